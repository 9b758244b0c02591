#include "kotsu/tune/pruner.hpp"

#include <algorithm>
#include <cmath>

#include "kotsu/core/error.hpp"

namespace kotsu {

namespace {

// numpy.nanpercentile with linear interpolation.
double nan_percentile(std::vector<double> v, double q) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return std::isnan(x); }), v.end());
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const double pos = q / 100.0 * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

class NoPruner : public Pruner {
 public:
  bool prune(const Trial&, const std::vector<Trial>&, Direction) const override { return false; }
};

class MedianPruner : public Pruner {
 public:
  explicit MedianPruner(const PrunerOptions& o) : o_(o) {}
  bool prune(const Trial& trial, const std::vector<Trial>& study, Direction dir) const override {
    std::vector<const Trial*> complete;
    for (const auto& t : study)
      if (t.state == TrialState::Complete && t.number != trial.number) complete.push_back(&t);
    if (complete.empty() || static_cast<int>(complete.size()) < o_.n_startup_trials || trial.intermediate.empty()) return false;
    const int64_t step = trial.intermediate.rbegin()->first;
    if (step < o_.n_warmup_steps) return false;
    // only the first report at or after each pruning step is checked
    const int64_t nearest = (step - o_.n_warmup_steps) / o_.interval_steps * o_.interval_steps + o_.n_warmup_steps;
    int64_t second_last = -1;
    for (const auto& [s, v] : trial.intermediate)
      if (s > second_last && s != step) second_last = s;
    if (!(second_last < nearest)) return false;
    double best = std::nan("");
    for (const auto& [s, v] : trial.intermediate) {
      if (std::isnan(v)) continue;
      if (std::isnan(best) || (dir == Direction::Minimize ? v < best : v > best)) best = v;
    }
    if (std::isnan(best)) return true;
    std::vector<double> at_step;
    for (const Trial* t : complete) {
      auto it = t->intermediate.find(step);
      if (it != t->intermediate.end()) at_step.push_back(it->second);
    }
    if (static_cast<int>(at_step.size()) < o_.n_min_trials) return false;
    const double p = nan_percentile(at_step, 50.0);  // the median (100 - 50 for maximising)
    if (std::isnan(p)) return false;
    return dir == Direction::Maximize ? best < p : best > p;
  }

 private:
  PrunerOptions o_;
};

class SuccessiveHalvingPruner : public Pruner {
 public:
  explicit SuccessiveHalvingPruner(const PrunerOptions& o) : o_(o) {
    if (o.reduction_factor < 2) throw Error("options", "reduction_factor", "must be >= 2");
    if (o.min_resource < 1) throw Error("options", "min_resource", "must be >= 1");
  }
  bool prune(const Trial& trial, const std::vector<Trial>& study, Direction dir) const override {
    if (trial.intermediate.empty()) return false;
    const int64_t step = trial.intermediate.rbegin()->first;
    const double value = trial.intermediate.rbegin()->second;
    // the rungs this trial has passed: every promotion step before its last report
    for (int rung = 0;; ++rung) {
      const int64_t promotion = rung_step(rung);
      if (step < promotion) return false;
      if (promotion < step && trial.intermediate.count(promotion)) continue;  // decided at an earlier report
      if (std::isnan(value)) return true;
      // competing: every other trial's value at this rung's step, and this one
      std::vector<double> competing;
      for (const auto& t : study) {
        if (t.number == trial.number) continue;
        auto it = t.intermediate.find(promotion);
        if (it != t.intermediate.end()) competing.push_back(it->second);
      }
      competing.push_back(value);
      size_t idx = competing.size() / static_cast<size_t>(o_.reduction_factor);
      idx = idx == 0 ? 0 : idx - 1;
      std::sort(competing.begin(), competing.end());
      const bool promotable = dir == Direction::Maximize ? value >= competing[competing.size() - 1 - idx] : value <= competing[idx];
      if (!promotable) return true;
    }
  }

 private:
  int64_t rung_step(int rung) const {
    int64_t s = o_.min_resource;
    for (int i = 0; i < o_.min_early_stopping_rate + rung; ++i) s *= o_.reduction_factor;
    return s;
  }
  PrunerOptions o_;
};

}  // namespace

std::unique_ptr<Pruner> make_pruner(const std::string& name, const PrunerOptions& o) {
  if (name == "none") return std::make_unique<NoPruner>();
  if (name == "median") return std::make_unique<MedianPruner>(o);
  if (name == "asha" || name == "successive_halving") return std::make_unique<SuccessiveHalvingPruner>(o);
  throw Error("options", "pruner", "must be none, median or asha, got '" + name + "'");
}

}  // namespace kotsu
