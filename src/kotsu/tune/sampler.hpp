// kotsu/tune/sampler: where the next trial looks. Random (seeded), grid (every combination, each once,
// in a seeded order), and TPE (the tree-structured Parzen estimator of Bergstra et al. 2011 with
// Optuna 3.1's choices: 10 random start-up trials, the best min(ceil(0.1 n), 25) trials as "good",
// Parzen mixtures of truncated Gaussians plus a prior component, bandwidths by Scott's rule
// (multivariate) or neighbour gaps (univariate) with the magic clip, 24 candidates drawn from the good
// mixture, the one with the highest log l(x) - log g(x) kept). The densities equal Optuna 3.1's to 1e-9,
// including its truncated-normal log density without the -log(sigma) term (a quirk of that version that
// flattens narrow components; with the term, TPE found worse optima on Hartmann-6 in bench/hpo). Pruned trials count as Optuna counts them
// (ranked by the last step reached, then its value); running and failed trials are ignored.
// One estimator per parameter by default (Optuna's default, from the trials where the parameter existed);
// `multivariate` samples the parameters that share a condition jointly instead. Over 50 seeds in
// bench/hpo the joint form was better on Hartmann-6 at 50 trials but clearly worse on Branin, the
// per-parameter form indistinguishable from Optuna's everywhere, hence the default. Written by hand: no C++ library in Debian does hyper-parameter search.
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "kotsu/tune/space.hpp"
#include "kotsu/tune/trial.hpp"

namespace kotsu {

class Sampler {
 public:
  virtual ~Sampler() = default;
  // The parameters of trial `number` given the study so far; deterministic in (seed, number, history).
  // Null when there is nothing left to try (a finished grid).
  virtual nlohmann::json sample(const SearchSpace& space, const std::vector<Trial>& history, Direction direction, int64_t number) = 0;
};

struct TpeOptions {
  int n_startup_trials = 10;
  int n_ei_candidates = 24;
  bool multivariate = false;
  double prior_weight = 1.0;
};

// name: "random", "grid" or "tpe". grid_points: values per float parameter (ints: every value up to
// that many, else evenly spaced; categorical: every choice).
std::unique_ptr<Sampler> make_sampler(const std::string& name, uint64_t seed, const TpeOptions& tpe = {}, int grid_points = 5);

// The log density at x (internal representation, one value per parameter) of TPE's Parzen estimator
// built from `observations` (rows in trial order); exposed for the parity test with Optuna's.
double parzen_log_pdf(const std::vector<const Param*>& params, const std::vector<std::vector<double>>& observations, const std::vector<double>& x,
                      const TpeOptions& o);

// Every combination of the grid (for tests and for reporting the grid's size).
std::vector<nlohmann::json> grid_points(const SearchSpace& space, int points_per_float);

}  // namespace kotsu
