// kotsu/eval/scores: metrics of predicted probabilities (scores), with scikit-learn 1.2's definitions
// (roc_auc_score, average_precision_score, top_k_accuracy_score, log_loss), plus the expected calibration
// error with its reliability diagram (Guo et al. 2017: 15 equal-width confidence bins, (lo, hi]) and
// percentile-bootstrap confidence intervals. Written by hand: no C++ library in Debian implements them.
// Probabilities are row-major [n, k] doubles. A metric that is undefined for the data (ROC-AUC of a class
// with no positive or no negative example) is NaN, where scikit-learn raises or warns.
#pragma once
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <vector>

namespace kotsu {

// Binary: y in {0, 1}, higher score = more likely 1. Ties are handled as scikit-learn's curves do.
double roc_auc_binary(const std::vector<int>& y, const std::vector<double>& score);
double average_precision_binary(const std::vector<int>& y, const std::vector<double>& score);

// scikit-learn 1.2's roc_curve (drop_intermediate=True; x = false positive rate, y = true positive rate,
// from (0, 0) with an extra first threshold of max + 1; NaN rates when a class is absent) and
// precision_recall_curve (x = recall, decreasing, y = precision, ending at (0, 1); one threshold fewer
// than points). thresholds are the distinct scores.
struct Curve {
  std::vector<double> x, y, thresholds;
};
Curve roc_curve(const std::vector<int>& y, const std::vector<double>& score);
Curve precision_recall_curve(const std::vector<int>& y, const std::vector<double>& score);

// One-vs-rest over k classes (y: class ids) or multi-label targets (Y: row-major [n, k] of 0/1):
// per-class values, and their macro (unweighted) and support-weighted means over the defined classes.
struct PerClassScore {
  std::vector<double> per_class;
  double macro = 0, weighted = 0;
};
PerClassScore roc_auc_ovr(const std::vector<int64_t>& y, const std::vector<double>& probs, int64_t k);
PerClassScore average_precision_ovr(const std::vector<int64_t>& y, const std::vector<double>& probs, int64_t k);
PerClassScore average_precision_multilabel(const std::vector<int>& Y, const std::vector<double>& scores, int64_t k);

// The true class among the k_top highest probabilities; among equal probabilities the higher class id
// ranks first (scikit-learn's stable argsort, reversed).
double top_k_accuracy(const std::vector<int64_t>& y, const std::vector<double>& probs, int64_t k, int64_t k_top);
// Mean negative log-likelihood of the true class: probabilities clipped to [eps, 1 - eps] (machine eps)
// and renormalised per row, as scikit-learn 1.2.
double log_loss(const std::vector<int64_t>& y, const std::vector<double>& probs, int64_t k);

struct ReliabilityBin {
  double low = 0, high = 0;
  int64_t count = 0;
  double confidence = 0, accuracy = 0;  // means over the bin's examples (0 when empty)
};
// Expected calibration error of the top-class confidence: sum over bins of |bin| / n * |accuracy - confidence|.
double expected_calibration_error(const std::vector<int64_t>& y, const std::vector<double>& probs, int64_t k,
                                  int64_t bins = 15, std::vector<ReliabilityBin>* diagram = nullptr);

// Percentile bootstrap: `metric` on `rounds` resamples (n indices drawn with replacement, seeded) and the
// (1 - level) / 2 and (1 + level) / 2 quantiles (linear interpolation, numpy's default).
struct Interval {
  double low = 0, high = 0;
};
Interval bootstrap_interval(size_t n, const std::function<double(const std::vector<size_t>&)>& metric, int64_t rounds = 1000,
                            double level = 0.95, uint64_t seed = 0);

// Everything above for a single-label classifier's probabilities, as the eval report's "scores" object:
// roc_auc {macro, weighted, per_class}, average_precision (per class, mAP = macro), top-k accuracy for
// k = 2, 3, 5 below the class count, log_loss, ece and the reliability diagram, and 95% bootstrap
// intervals of accuracy, macro-F1 and macro ROC-AUC (the last when n x classes <= 200,000), and "curves":
// ROC and precision-recall curves for plotting ({label, area, x, y}, at most 200 points each): the second
// class of a binary task; the micro average and each class (up to 20 classes) otherwise.
nlohmann::json score_report(const std::vector<int64_t>& y, const std::vector<double>& probs, int64_t k,
                            const std::vector<std::string>& labels, int64_t bootstrap_rounds = 1000, uint64_t seed = 0);

// A few lines for the terminal: ROC-AUC, mAP, top-k, ECE and the intervals of a score_report.
std::string scores_text(const nlohmann::json& report);

}  // namespace kotsu
