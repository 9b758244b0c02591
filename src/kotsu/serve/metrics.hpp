// kotsu/serve/metrics: the server's counters in the Prometheus text exposition format (version 0.0.4):
// requests by model and status code, a request latency histogram, a batch size histogram per model, and
// queue depth gauges read at scrape time. Thread-safe; one short lock per update.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace kotsu {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}
  void observe(double v);
  // Appends `name`_bucket{labels,le=...} (cumulative), _sum and _count lines; labels without braces.
  void write(std::string& out, const std::string& name, const std::string& labels) const;
  uint64_t count() const { return count_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative); the last is +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

class ServeMetrics {
 public:
  // model "" for requests that name none (health, metrics, unknown paths).
  void request(const std::string& model, int code, double seconds);
  void batch(const std::string& model, size_t size);
  // The exposition text; queue_depths gives (model, depth) pairs at scrape time.
  std::string text(const std::vector<std::pair<std::string, size_t>>& queue_depths) const;

 private:
  mutable std::mutex m_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::map<std::string, Histogram> latency_, batches_;
};

// A label value escaped for the exposition format (backslash, quote, newline).
std::string prometheus_escape(const std::string& s);

}  // namespace kotsu
