// kotsu/tune/study: one hyper-parameter study as a worker runs it: claim a trial from the storage (the
// sampler picks its parameters), run the objective while a heartbeat thread keeps the claim alive,
// store each reported step and ask the pruner, record the result. Any number of workers (threads of one
// process, processes, or machines sharing the storage) run the same study.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kotsu/tune/pruner.hpp"
#include "kotsu/tune/sampler.hpp"
#include "kotsu/tune/space.hpp"
#include "kotsu/tune/storage.hpp"

namespace kotsu {

struct StudyOptions {
  std::string storage;            // see open_storage
  std::string name = "study";
  Direction direction = Direction::Maximize;
  std::string sampler = "tpe", pruner = "none";
  uint64_t seed = 0;
  int64_t trials = 20;            // the study's budget (trials that did not fail)
  int64_t max_reports = 0;        // > 0: a compute budget too: no trial starts once the trials reported this many steps
  double heartbeat_seconds = 5, stale_seconds = 60;
  TpeOptions tpe;
  PrunerOptions pruning;
  int grid_points = 5;
  nlohmann::json objective = nlohmann::json::object();  // what is optimised: part of the study's identity
};

// report(step, value) stores an intermediate value and returns true when the trial should stop (pruned).
using Report = std::function<bool(int64_t step, double value)>;
// The objective: the trial's value (NaN: failed). Throwing TrialPruned ends the trial as pruned.
using Objective = std::function<double(const Trial& trial, const Report& report)>;
struct TrialPruned {};

class Study {
 public:
  Study(SearchSpace space, StudyOptions o);
  // Runs trials until the budget is reached; returns how many this worker ran. on_done (optional) hears
  // about each finished trial.
  int64_t optimize(const Objective& objective, const std::string& worker, const std::function<void(const Trial&)>& on_done = {});
  std::vector<Trial> trials();
  std::optional<Trial> best();  // the best complete trial
  const SearchSpace& space() const { return space_; }
  const StudyOptions& options() const { return o_; }

 private:
  SearchSpace space_;
  StudyOptions o_;
  std::unique_ptr<Storage> storage_;
  std::unique_ptr<Sampler> sampler_;
  std::unique_ptr<Pruner> pruner_;
};

// "host:pid", the name a worker process records on the trials it runs.
std::string worker_name();
// Runs work() in `jobs` processes: jobs - 1 forked children (each opening its own storage connection
// inside work) and this process; waits for the children and returns how many failed. The study should
// exist before (create it once, so the workers do not race to).
int run_worker_processes(int jobs, const std::function<void()>& work);

// Standard test functions for checking samplers (bench/hpo, tests): "branin" (2 floats, minimum
// 0.397887), "hartmann6" (6 floats in [0, 1], minimum -3.32237), "mixed" (a categorical choosing which
// conditional float/int/log parameters exist, plus a shared float; minimum 0). All minimised.
SearchSpace test_function_space(const std::string& name);
double test_function(const std::string& name, const nlohmann::json& params);

}  // namespace kotsu
