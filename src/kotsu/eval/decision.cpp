#include "kotsu/eval/decision.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "kotsu/core/error.hpp"

namespace kotsu {

int64_t decide(const float* probs, int64_t k, const DecisionRule& rule) {
  if (rule.active() && rule.cls < k && probs[rule.cls] >= rule.threshold) return rule.cls;
  int64_t best = -1;
  for (int64_t c = 0; c < k; ++c)
    if (!(rule.active() && c == rule.cls) && (best < 0 || probs[c] > probs[best])) best = c;
  return best < 0 ? 0 : best;
}

ThresholdChoice choose_threshold(const std::vector<float>& probs, int64_t k, const std::vector<int64_t>& y, int64_t cls,
                                 double target, const std::string& source) {
  std::vector<float> mine;
  for (size_t i = 0; i < y.size(); ++i)
    if (y[i] == cls) mine.push_back(probs[i * static_cast<size_t>(k) + static_cast<size_t>(cls)]);
  if (mine.empty()) throw Error(source, "target_recall", "has no example of the class to choose its threshold on");
  std::sort(mine.begin(), mine.end(), std::greater<float>());
  // the fewest caught examples whose share reaches the target (a hair of tolerance for 0.95 * 20 = 19)
  const size_t need = std::max<size_t>(1, static_cast<size_t>(std::ceil(target * static_cast<double>(mine.size()) - 1e-9)));
  ThresholdChoice t;
  t.threshold = mine[std::min(need, mine.size()) - 1];
  t.positives = mine.size();
  size_t caught = 0, flagged = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    if (probs[i * static_cast<size_t>(k) + static_cast<size_t>(cls)] < t.threshold) continue;
    ++flagged;
    caught += y[i] == cls;
  }
  t.recall = static_cast<double>(caught) / static_cast<double>(mine.size());
  t.precision = flagged ? static_cast<double>(caught) / static_cast<double>(flagged) : 0.0;
  return t;
}

std::pair<std::string, double> parse_target_recall(const std::string& spec) {
  const size_t eq = spec.rfind('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
    throw Error("options", "target_recall", "'" + spec + "' is not CLASS=RECALL (for example spam=0.95)");
  const std::string value = spec.substr(eq + 1);
  char* end = nullptr;
  const double r = std::strtod(value.c_str(), &end);
  if (end != value.c_str() + value.size() || !(r > 0 && r <= 1))
    throw Error("options", "target_recall", "'" + value + "' is not a recall in (0, 1]");
  return {spec.substr(0, eq), r};
}

}  // namespace kotsu
