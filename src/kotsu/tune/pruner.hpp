// kotsu/tune/pruner: stopping unpromising trials early from the validation metric they report after each
// epoch. Median (Optuna's MedianPruner: after n_startup_trials complete trials and n_warmup_steps, a trial
// whose best value so far is worse than the median of the complete trials' values at the same step
// stops) and successive halving (ASHA; Optuna's SuccessiveHalvingPruner: at steps min_resource *
// reduction_factor^(min_early_stopping_rate + rung), a trial goes on only when its value is among the best
// 1 / reduction_factor of all values reported at that step). Same decisions as Optuna 3.1 on the same
// reports (tests/fixtures/make_pruner_reference.py). Written by hand.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kotsu/tune/trial.hpp"

namespace kotsu {

struct PrunerOptions {
  int n_startup_trials = 5, n_warmup_steps = 0, interval_steps = 1, n_min_trials = 1;  // median
  int min_resource = 1, reduction_factor = 4, min_early_stopping_rate = 0;            // successive halving
};

class Pruner {
 public:
  virtual ~Pruner() = default;
  // Whether `trial`, which has just reported its value for its last step, should stop; `study` holds the
  // other trials (any state; the trial itself may be among them and is skipped).
  virtual bool prune(const Trial& trial, const std::vector<Trial>& study, Direction direction) const = 0;
};

// name: "none", "median" or "asha" (also "successive_halving").
std::unique_ptr<Pruner> make_pruner(const std::string& name, const PrunerOptions& o = {});

}  // namespace kotsu
