#include "kotsu/serve/metrics.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace kotsu {

namespace {
const std::vector<double> kLatencyBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
const std::vector<double> kBatchBounds = {1, 2, 4, 8, 16, 32, 64, 128, 256};

std::string number(double v) { return fmt::format("{}", v); }
}  // namespace

std::string prometheus_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

void Histogram::observe(double v) {
  const size_t i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::write(std::string& out, const std::string& name, const std::string& labels) const {
  const std::string sep = labels.empty() ? "" : ",";
  uint64_t cum = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cum += counts_[i];
    out += fmt::format("{}_bucket{{{}{}le=\"{}\"}} {}\n", name, labels, sep, number(bounds_[i]), cum);
  }
  out += fmt::format("{}_bucket{{{}{}le=\"+Inf\"}} {}\n", name, labels, sep, count_);
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out += fmt::format("{}_sum{} {}\n{}_count{} {}\n", name, braces, number(sum_), name, braces, count_);
}

void ServeMetrics::request(const std::string& model, int code, double seconds) {
  std::lock_guard<std::mutex> lk(m_);
  ++requests_[{model, code}];
  latency_.try_emplace(model, kLatencyBounds).first->second.observe(seconds);
}

void ServeMetrics::batch(const std::string& model, size_t size) {
  std::lock_guard<std::mutex> lk(m_);
  batches_.try_emplace(model, kBatchBounds).first->second.observe(static_cast<double>(size));
}

std::string ServeMetrics::text(const std::vector<std::pair<std::string, size_t>>& queue_depths) const {
  std::string out;
  std::lock_guard<std::mutex> lk(m_);
  out += "# HELP kotsu_requests_total HTTP requests answered, by model and status code.\n";
  out += "# TYPE kotsu_requests_total counter\n";
  for (const auto& [key, n] : requests_)
    out += fmt::format("kotsu_requests_total{{model=\"{}\",code=\"{}\"}} {}\n", prometheus_escape(key.first), key.second, n);
  out += "# HELP kotsu_request_duration_seconds Time from a request's arrival to its answer.\n";
  out += "# TYPE kotsu_request_duration_seconds histogram\n";
  for (const auto& [model, h] : latency_)
    h.write(out, "kotsu_request_duration_seconds", fmt::format("model=\"{}\"", prometheus_escape(model)));
  out += "# HELP kotsu_batch_size Inputs per forward pass of the dynamic batcher.\n";
  out += "# TYPE kotsu_batch_size histogram\n";
  for (const auto& [model, h] : batches_) h.write(out, "kotsu_batch_size", fmt::format("model=\"{}\"", prometheus_escape(model)));
  out += "# HELP kotsu_queue_depth Inputs waiting for a batch.\n";
  out += "# TYPE kotsu_queue_depth gauge\n";
  for (const auto& [model, d] : queue_depths) out += fmt::format("kotsu_queue_depth{{model=\"{}\"}} {}\n", prometheus_escape(model), d);
  return out;
}

}  // namespace kotsu
