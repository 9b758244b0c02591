// kotsu/eval/drift: the population stability index (PSI) between a reference sample (what a model saw when
// it was validated) and a live one (its prediction log), the usual measure of when to retrain:
//   PSI = sum over bins of (live_i - ref_i) * ln(live_i / ref_i), with bin shares floored at 1e-4 so an
//   empty bin gives a large but finite term (the convention of credit-scoring practice).
// Numeric features (confidence, input length) are binned at the reference's deciles (ties collapse bins);
// categorical ones (predicted label) use one bin per category, the union of both samples.
// Verdict thresholds are the customary ones: < 0.1 stable, 0.1 to 0.25 a moderate shift, >= 0.25 a major
// shift ("retrain recommended"). Pure functions: no model, no files.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace kotsu {

struct PsiResult {
  double psi = 0;
  std::vector<std::string> bins;           // bin names ("<= 0.73", "(0.73, 0.81]", "> 0.95", or the category)
  std::vector<double> reference, live;     // shares per bin (before flooring), each summing to 1
  std::string verdict() const;             // "stable", "moderate shift" or "major shift"
};

// requires: both samples non-empty (kotsu::Error otherwise, naming `what`).
PsiResult psi_numeric(const std::vector<double>& reference, const std::vector<double>& live, const std::string& what,
                      int bins = 10);
PsiResult psi_categorical(const std::vector<std::string>& reference, const std::vector<std::string>& live, const std::string& what);

// The PSI of two share vectors over the same bins (floored at 1e-4).
double psi_of_shares(const std::vector<double>& reference, const std::vector<double>& live);

// What drift is measured on: per input, the predicted label, its probability and the input's length
// (characters of a text, pixels of a picture).
struct DriftSample {
  std::vector<std::string> labels;
  std::vector<double> confidence, length;
  size_t size() const { return labels.size(); }
};

struct DriftReport {
  PsiResult label, confidence, length;
  size_t reference_n = 0, live_n = 0;
  std::string verdict() const;  // the worst of the three
  bool retrain() const { return verdict() == "major shift"; }
  nlohmann::ordered_json to_json() const;
  std::string text() const;  // a few lines for the terminal, ending in the recommendation
};

// requires: both samples non-empty, each with as many confidences and lengths as labels.
DriftReport drift_report(const DriftSample& reference, const DriftSample& live);

}  // namespace kotsu
