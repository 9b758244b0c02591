#include "kotsu/eval/metrics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "kotsu/core/error.hpp"

namespace kotsu {

namespace {
double safe_div(double a, double b) { return b == 0 ? 0.0 : a / b; }
double f1_of(double p, double r) { return p + r == 0 ? 0.0 : 2 * p * r / (p + r); }
}  // namespace

ClassificationMetrics classification_metrics(const std::vector<int64_t>& y_true, const std::vector<int64_t>& y_pred,
                                             int64_t k) {
  if (y_true.size() != y_pred.size()) throw Error("", "metrics", "y_true and y_pred differ in length");
  ClassificationMetrics m;
  m.n = static_cast<int64_t>(y_true.size());
  m.confusion.assign(static_cast<size_t>(k), std::vector<int64_t>(static_cast<size_t>(k), 0));
  int64_t correct = 0;
  for (size_t i = 0; i < y_true.size(); ++i) {
    if (y_true[i] < 0 || y_true[i] >= k || y_pred[i] < 0 || y_pred[i] >= k) throw Error("", "metrics", "class id out of range");
    ++m.confusion[static_cast<size_t>(y_true[i])][static_cast<size_t>(y_pred[i])];
    correct += y_true[i] == y_pred[i];
  }
  m.accuracy = safe_div(static_cast<double>(correct), static_cast<double>(m.n));
  double total_support = 0;
  for (int64_t c = 0; c < k; ++c) {
    auto cu = static_cast<size_t>(c);
    double tp = static_cast<double>(m.confusion[cu][cu]);
    double pred = 0, sup = 0;
    for (int64_t o = 0; o < k; ++o) {
      pred += static_cast<double>(m.confusion[static_cast<size_t>(o)][cu]);
      sup += static_cast<double>(m.confusion[cu][static_cast<size_t>(o)]);
    }
    double p = safe_div(tp, pred), r = safe_div(tp, sup);
    m.precision.push_back(p);
    m.recall.push_back(r);
    m.f1.push_back(f1_of(p, r));
    m.support.push_back(static_cast<int64_t>(sup));
    total_support += sup;
  }
  for (int64_t c = 0; c < k; ++c) {
    auto cu = static_cast<size_t>(c);
    m.macro_precision += m.precision[cu] / static_cast<double>(k);
    m.macro_recall += m.recall[cu] / static_cast<double>(k);
    m.macro_f1 += m.f1[cu] / static_cast<double>(k);
    double w = safe_div(static_cast<double>(m.support[cu]), total_support);
    m.weighted_precision += w * m.precision[cu];
    m.weighted_recall += w * m.recall[cu];
    m.weighted_f1 += w * m.f1[cu];
  }
  // single-label: micro precision = micro recall = accuracy
  m.micro_precision = m.micro_recall = m.micro_f1 = m.accuracy;
  return m;
}

void add_log_loss(ClassificationMetrics& m, const std::vector<int64_t>& y_true, const std::vector<float>& probs) {
  const size_t k = m.confusion.size();
  if (probs.size() != y_true.size() * k) throw Error("", "metrics", "probabilities have the wrong size");
  double sum = 0;
  for (size_t i = 0; i < y_true.size(); ++i) {
    double p = std::clamp(static_cast<double>(probs[i * k + static_cast<size_t>(y_true[i])]), 1e-15, 1.0);
    sum -= std::log(p);
  }
  m.log_loss = safe_div(sum, static_cast<double>(y_true.size()));
}

bool is_metric_name(const std::string& name) {
  static const char* names[] = {"accuracy", "macro_f1", "weighted_f1", "micro_f1", "macro_precision", "macro_recall",
                                "weighted_precision", "weighted_recall", "loss"};
  return std::find(std::begin(names), std::end(names), name) != std::end(names);
}

double ClassificationMetrics::get(const std::string& name) const {
  if (name == "accuracy") return accuracy;
  if (name == "macro_f1") return macro_f1;
  if (name == "weighted_f1") return weighted_f1;
  if (name == "micro_f1") return micro_f1;
  if (name == "macro_precision") return macro_precision;
  if (name == "macro_recall") return macro_recall;
  if (name == "weighted_precision") return weighted_precision;
  if (name == "weighted_recall") return weighted_recall;
  if (name == "loss") return log_loss;
  throw Error("", "metric", "unknown metric '" + name + "'");
}

nlohmann::json metrics_json(const ClassificationMetrics& m, const std::vector<std::string>& labels) {
  nlohmann::ordered_json per_class = nlohmann::ordered_json::object();
  for (size_t c = 0; c < m.precision.size(); ++c)
    per_class[labels.at(c)] = {{"precision", m.precision[c]}, {"recall", m.recall[c]}, {"f1", m.f1[c]}, {"support", m.support[c]}};
  nlohmann::ordered_json j = {
      {"n", m.n},
      {"accuracy", m.accuracy},
      {"macro", {{"precision", m.macro_precision}, {"recall", m.macro_recall}, {"f1", m.macro_f1}}},
      {"weighted", {{"precision", m.weighted_precision}, {"recall", m.weighted_recall}, {"f1", m.weighted_f1}}},
      {"micro", {{"precision", m.micro_precision}, {"recall", m.micro_recall}, {"f1", m.micro_f1}}},
      {"per_class", per_class},
      {"labels", labels},
      {"confusion_matrix", m.confusion},
  };
  if (m.log_loss >= 0) j["log_loss"] = m.log_loss;
  return nlohmann::json(j);
}

std::string metrics_text(const ClassificationMetrics& m, const std::vector<std::string>& labels) {
  size_t w = 9;
  for (auto& l : labels) w = std::max(w, std::min<size_t>(l.size(), 30));
  std::string s = fmt::format("{:>{}}  precision  recall  f1      support\n", "", w);
  for (size_t c = 0; c < labels.size(); ++c)
    s += fmt::format("{:>{}}  {:9.4f}  {:6.4f}  {:6.4f}  {:7d}\n", labels[c].substr(0, 30), w, m.precision[c], m.recall[c],
                     m.f1[c], m.support[c]);
  s += fmt::format("\n{:>{}}  {:9}  {:6}  {:6.4f}  {:7d}\n", "accuracy", w, "", "", m.accuracy, m.n);
  s += fmt::format("{:>{}}  {:9.4f}  {:6.4f}  {:6.4f}  {:7d}\n", "macro avg", w, m.macro_precision, m.macro_recall, m.macro_f1, m.n);
  s += fmt::format("{:>{}}  {:9.4f}  {:6.4f}  {:6.4f}  {:7d}\n", "weighted", w, m.weighted_precision, m.weighted_recall, m.weighted_f1, m.n);
  if (m.log_loss >= 0) s += fmt::format("{:>{}}  {:.4f}\n", "log loss", w, m.log_loss);
  if (labels.size() <= 20) {
    s += "\nconfusion matrix (rows = true, columns = predicted)\n";
    size_t cw = 6;
    s += fmt::format("{:>{}}", "", w);
    for (size_t c = 0; c < labels.size(); ++c) s += fmt::format(" {:>{}}", labels[c].substr(0, cw), cw);
    s += "\n";
    for (size_t r = 0; r < labels.size(); ++r) {
      s += fmt::format("{:>{}}", labels[r].substr(0, 30), w);
      for (size_t c = 0; c < labels.size(); ++c) s += fmt::format(" {:>{}}", m.confusion[r][c], cw);
      s += "\n";
    }
  }
  return s;
}

}  // namespace kotsu
