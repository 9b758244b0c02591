// kotsu/eval/decision: how a classifier's probabilities become a label. By default the most probable class
// (the first maximum, as numpy.argmax). With a target recall for one class (`kotsu train --target-recall
// CLASS=R`: a spam filter that must catch 95% of spam, a defect detector that must miss few defects) the
// run stores a threshold, and the label is that class whenever its probability reaches the threshold, else
// the most probable of the other classes. The threshold is the highest one at which the class's recall on
// the validation split reaches R: as many of the class's examples as R asks for are caught, and as few
// others as that allows. Pure functions; the run's rule is read by infer/evaluate (run_decision_rule).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace kotsu {

struct DecisionRule {
  int64_t cls = -1;  // < 0: the most probable class
  double threshold = 0;
  bool active() const { return cls >= 0; }
};

// The label of one row of k probabilities.
int64_t decide(const float* probs, int64_t k, const DecisionRule& rule);

struct ThresholdChoice {
  double threshold = 0;
  double recall = 0, precision = 0;  // of the class on the examples it was chosen on, with that threshold
  size_t positives = 0;              // examples of the class there
};

// The highest threshold whose recall of class `cls` over (probs [N * k] row-major, y) reaches `target`
// (in (0, 1]). requires: an example of the class; else kotsu::Error naming `source`.
ThresholdChoice choose_threshold(const std::vector<float>& probs, int64_t k, const std::vector<int64_t>& y, int64_t cls,
                                 double target, const std::string& source);

// "CLASS=R" -> {CLASS, R}; R in (0, 1]. A malformed spec: kotsu::Error on field target_recall.
std::pair<std::string, double> parse_target_recall(const std::string& spec);

}  // namespace kotsu
