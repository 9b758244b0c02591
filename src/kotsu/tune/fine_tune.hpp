// kotsu/tune/fine_tune: hyper-parameter search over fine-tuning runs: every trial is `kotsu train` with the
// run file's options plus the trial's parameters (any train option: lr, batch_size, strategy, unfreeze,
// weight_decay, label_smoothing, epochs, ...), into OUT/trial-N; the objective is the run's best
// validation metric, reported after each epoch so that the pruner can stop poor trials early (with cv,
// the mean over K folds of the held-out fold's metric, reported after each fold). J worker
// processes share the study (SQLite in OUT/study.db unless another storage is given), each with
// cores / J threads. The study resumes where it stopped when run again with the same OUT.
// When the study is done, the best configuration is trained once more on train+validation together
// (validation: false) for the epochs at which its trial was best, into OUT/final, and evaluated on the
// test file when one is given: the honest number, from data no trial and no choice has seen.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kotsu/train/options.hpp"
#include "kotsu/tune/study.hpp"

namespace kotsu {

struct FineTuneSearch {
  TrainOptions base;  // base.out: the search directory
  SearchSpace space;
  StudyOptions study; // storage (default OUT/study.db), trials, max_reports (the compute budget in epochs, folds with
                      // cv), sampler, pruner, seed; direction and name are set here
  int jobs = 1;
  int64_t cv_folds = 0;  // > 0: the objective is the mean of a K-fold cv (kotsu cv), reported fold by fold
  // The first epoch (fold with cv) after which the pruner may stop a trial: the median pruner's
  // n_warmup_steps and ASHA's min_resource. 0: half the epochs, rounded up (the first fold with cv).
  // Fine-tuning curves in their first epochs rank trials badly: a high learning rate that ends best is
  // often worst after one or two epochs (see bench/hpo_sst2), so judging a trial that early prunes the
  // best region.
  int64_t prune_after = 0;
  bool final_fit = true;  // retrain the best configuration on train+validation into OUT/final
  std::string test_data;  // then evaluate it on this labelled file (OUT/final/eval-<name>.json)
  bool quiet = false;
};

// The run file's `search:` map and optional `tune:` map (trials, budget, sampler, pruner, prune_after, seed, jobs,
// storage, cv, final, test, multivariate) taken out of it; the rest are train options.
FineTuneSearch read_search_run_file(const std::string& path);

// Runs (or resumes) the search; returns the summary also written to OUT/tune.json: every trial (number,
// state, params, value, epochs run, run directory), the best one, the leaderboard order, and "final" (the
// retrained model: run, trial, epochs, examples, and "test" metrics when a test file was given).
nlohmann::json run_fine_tune_search(FineTuneSearch s);

}  // namespace kotsu
