// kotsu/eval/metrics: classification metrics as pure functions of (true, predicted) class ids, with
// scikit-learn's definitions (zero_division=0: an undefined precision or recall counts as 0).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace kotsu {

struct ClassificationMetrics {
  int64_t n = 0;
  double accuracy = 0;
  std::vector<double> precision, recall, f1;  // per class
  std::vector<int64_t> support;                // true count per class
  double macro_precision = 0, macro_recall = 0, macro_f1 = 0;
  double weighted_precision = 0, weighted_recall = 0, weighted_f1 = 0;
  double micro_precision = 0, micro_recall = 0, micro_f1 = 0;
  double log_loss = -1;                              // when probabilities were given
  std::vector<std::vector<int64_t>> confusion;       // [true][predicted]

  // Looks a summary metric up by name: accuracy, macro_f1, weighted_f1, micro_f1, macro_precision, ...
  double get(const std::string& name) const;
};

ClassificationMetrics classification_metrics(const std::vector<int64_t>& y_true, const std::vector<int64_t>& y_pred,
                                             int64_t n_classes);
// Adds the mean negative log-likelihood of the true class (probabilities row-major [n, n_classes]).
void add_log_loss(ClassificationMetrics& m, const std::vector<int64_t>& y_true, const std::vector<float>& probs);

bool is_metric_name(const std::string& name);
nlohmann::json metrics_json(const ClassificationMetrics& m, const std::vector<std::string>& labels);
std::string metrics_text(const ClassificationMetrics& m, const std::vector<std::string>& labels);

}  // namespace kotsu
