// kotsu tune RUNFILE: hyper-parameter search over fine-tuning runs (tune/fine_tune): the run file holds the
// train options, a `search:` map and optionally a `tune:` map; flags override the latter.
// kotsu tune --function NAME: the same study machinery (tune/study) on a standard test function, to check
// and compare the samplers and the shared storage (bench/hpo). --jobs J runs J worker processes on one
// study, and more workers may join from other shells with the same --storage.
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <optional>
#include <thread>

#include "commands.hpp"
#include "kotsu/core/error.hpp"
#include "kotsu/tune/fine_tune.hpp"
#include "kotsu/tune/study.hpp"

namespace kotsu::cli {


Action add_tune(CLI::App& app) {
  struct Flags {
    std::string run_file, out, function, storage, sampler = "tpe", pruner = "none", name, test;
    bool final_fit = true;
    std::vector<std::string> params;
    int64_t trials = 50, budget = 0;
    uint64_t seed = 0;
    int jobs = 1, candidates = 24, startup = 10;
    int64_t cv = 0, prune_after = 0;
    double delay = 0, stale = 60, heartbeat = 5;
    bool json = false, multivariate = false;
  };
  auto f = std::make_shared<Flags>();
  auto* c = app.add_subcommand("tune", "hyper-parameter search (grid, random, TPE) with pruning and resumable shared studies");
  c->add_option("run_file", f->run_file, "run file: train options, a search: map of parameters, optionally a tune: map");
  c->add_option("--out", f->out, "search directory (trial runs, study.db, tune.json); default: the run file's out");
  c->add_option("--cv", f->cv, "objective: the mean metric of a K-fold cv per trial instead of the validation split");
  c->add_option("--test", f->test, "labelled test file: the retrained best configuration is evaluated on it");
  c->add_option("--final", f->final_fit, "retrain the best configuration on train+validation into OUT/final (true/false)")->capture_default_str();
  c->add_option("--param", f->params, "a search parameter NAME=KIND(ARGS)[|PARENT=VALUE], KIND float, log, int, intlog or cat (adds to the run file's)");
  c->add_option("--function", f->function, "instead of a run file, optimise a standard test function: branin, hartmann6 or mixed");
  c->add_option("--storage", f->storage, "study storage: a SQLite file (default: FUNCTION-SAMPLER-SEED.db); :memory: keeps nothing");
  c->add_option("--name", f->name, "study name (default: the function)");
  c->add_option("--trials", f->trials, "trials in the whole study (workers share the budget)")->capture_default_str();
  c->add_option("--budget", f->budget,
                "compute budget of a run-file search: no trial starts once the trials trained this many epochs (folds with --cv); "
                "trials are then unlimited unless --trials is given");
  c->add_option("--sampler", f->sampler, "tpe, random or grid")->capture_default_str();
  c->add_flag("--multivariate", f->multivariate, "TPE: one joint Parzen estimator per group of parameters instead of one per parameter");
  c->add_option("--startup-trials", f->startup, "TPE: random trials before the model is used")->capture_default_str();
  c->add_option("--ei-candidates", f->candidates, "TPE: candidates drawn from the good trials' density per sample")->capture_default_str();
  c->add_option("--pruner", f->pruner, "none, median or asha")->capture_default_str();
  c->add_option("--prune-after", f->prune_after,
                "the first epoch (fold with --cv) after which the pruner may stop a trial; default: half the run's epochs, rounded up "
                "(early fine-tuning epochs rank trials badly)");
  c->add_option("--seed", f->seed, "sampler seed")->capture_default_str();
  c->add_option("--jobs", f->jobs, "worker processes on this machine")->capture_default_str();
  c->add_option("--function-delay", f->delay, "seconds each evaluation takes (to exercise parallel workers)")->capture_default_str();
  c->add_option("--stale", f->stale, "seconds without a heartbeat after which a running trial counts as failed and is queued again")->capture_default_str();
  c->add_option("--heartbeat", f->heartbeat, "seconds between a running trial's heartbeats")->capture_default_str();
  c->add_flag("--json", f->json, "print every trial as JSON");
  return [f, c]() {
    if (f->run_file.empty() == f->function.empty()) throw Error("options", "run_file", "give either a run file or --function");
    if (!f->run_file.empty()) {
      FineTuneSearch s = read_search_run_file(f->run_file);
      if (!f->params.empty()) {
        nlohmann::json merged = s.space.to_json();
        const nlohmann::json extra = SearchSpace::from_specs(f->params).to_json();
        for (const auto& [k, v] : extra.items()) merged[k] = v;
        s.space = SearchSpace::from_json(merged, "--param");
      }
      if (!f->out.empty()) s.base.out = f->out;
      if (c->count("--budget")) {
        s.study.max_reports = f->budget;
        if (!c->count("--trials")) s.study.trials = std::numeric_limits<int64_t>::max();
      }
      if (c->count("--trials")) s.study.trials = f->trials;
      if (c->count("--sampler")) s.study.sampler = f->sampler;
      if (c->count("--pruner")) s.study.pruner = f->pruner;
      if (c->count("--prune-after")) {
        if (f->prune_after < 1) throw Error("options", "prune-after", "must be >= 1");
        s.prune_after = f->prune_after;
      }
      if (c->count("--seed")) s.study.seed = f->seed;
      if (c->count("--jobs")) s.jobs = f->jobs;
      if (c->count("--storage")) s.study.storage = f->storage;
      if (c->count("--cv")) s.cv_folds = f->cv;
      if (c->count("--test")) s.test_data = f->test;
      if (c->count("--final")) s.final_fit = f->final_fit;
      if (c->count("--startup-trials")) s.study.tpe.n_startup_trials = f->startup;
      if (c->count("--multivariate")) s.study.tpe.multivariate = true;
      s.study.stale_seconds = f->stale;
      s.study.heartbeat_seconds = f->heartbeat;
      nlohmann::json r = run_fine_tune_search(s);
      if (f->json) {
        fmt::print("{}\n", r.dump(2));
        return 0;
      }
      fmt::print("\nleaderboard ({} {}):\n", r["direction"].get<std::string>(), r["metric"].get<std::string>());
      for (size_t i = 0; i < r["leaderboard"].size() && i < 10; ++i) {
        const auto& t = r["trials"][r["leaderboard"][i].get<size_t>()];
        fmt::print("  {:>2}. trial {:>3}  {:.4f}  {}\n", i + 1, t["number"].get<int64_t>(), t["value"].get<double>(), t["params"].dump());
      }
      int64_t pruned = 0, failed = 0;
      for (const auto& t : r["trials"]) pruned += t["state"] == "pruned", failed += t["state"] == "failed";
      fmt::print("{} trials ({} pruned, {} failed), {} {}s run; summary in {}/tune.json and tune.html\n", r["trials"].size(), pruned, failed,
                 r["reports"].get<int64_t>(), r["report_unit"].get<std::string>(), s.base.out);
      if (r.contains("best")) fmt::print("best: {} ({})\n", r["best"]["run"].get<std::string>(), r["best"]["params"].dump());
      if (r.contains("final")) {
        const auto& fin = r["final"];
        fmt::print("final model: {} (trial {}'s configuration, {} examples, {} epoch(s))\n", fin["run"].get<std::string>(),
                   fin["trial"].get<int64_t>(), fin["examples"].get<int64_t>(), fin["epochs"].get<int64_t>());
        if (fin.contains("test"))
          fmt::print("test {} ({} examples): {} {:.4f} (validation {:.4f}), accuracy {:.4f}, macro_f1 {:.4f}; report {}\n",
                     fin["test"]["data"].get<std::string>(), fin["test"]["examples"].get<int64_t>(), r["metric"].get<std::string>(),
                     fin["test"]["value"].get<double>(), fin["validation_value"].get<double>(), fin["test"]["accuracy"].get<double>(),
                     fin["test"]["macro_f1"].get<double>(), fin["test"]["report"].get<std::string>());
      }
      return 0;
    }
    SearchSpace space = test_function_space(f->function);  // refuses an unknown name
    if (c->count("--budget")) throw Error("options", "budget", "counts the epochs of fine-tuning trials: it needs a run file, not --function");
    if (f->jobs < 1) throw Error("options", "jobs", "must be >= 1");
    if (f->heartbeat <= 0 || f->stale <= f->heartbeat) throw Error("options", "stale", "must exceed --heartbeat, which must be > 0");
    StudyOptions o;
    o.storage = f->storage.empty() ? fmt::format("{}-{}-{}.db", f->function, f->sampler, f->seed) : f->storage;
    if (o.storage == ":memory:" && f->jobs > 1) throw Error("options", "storage", ":memory: cannot be shared by --jobs; give a file");
    o.name = f->name.empty() ? f->function : f->name;
    o.direction = Direction::Minimize;
    o.sampler = f->sampler;
    o.pruner = f->pruner;
    o.seed = f->seed;
    o.trials = f->trials;
    o.stale_seconds = f->stale;
    o.heartbeat_seconds = f->heartbeat;
    o.tpe.multivariate = f->multivariate;
    o.tpe.n_ei_candidates = f->candidates;
    o.tpe.n_startup_trials = f->startup;
    if (f->candidates < 1 || f->startup < 0) throw Error("options", "ei_candidates", "needs at least one candidate and >= 0 start-up trials");
    o.objective = {{"function", f->function}};
    const std::string fn = f->function;
    const double delay = f->delay;
    Objective objective = [fn, delay](const Trial& t, const Report&) {
      if (delay > 0) std::this_thread::sleep_for(std::chrono::duration<double>(delay));
      return test_function(fn, t.params);
    };
    if (f->jobs > 1) Study(space, o);  // create the study once before the workers race to
    int64_t mine = 0;
    std::optional<Study> here;  // this process's connection (children open theirs after the fork); kept for :memory:
    const int failed_workers = run_worker_processes(f->jobs, [&] {
      here.emplace(space, o);
      mine = here->optimize(objective, worker_name());
    });
    Study& study = *here;
    std::vector<Trial> trials = study.trials();
    if (f->json) {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& t : trials)
        out.push_back({{"number", t.number}, {"state", trial_state_name(t.state)}, {"params", t.params},
                       {"value", std::isnan(t.value) ? nlohmann::json(nullptr) : nlohmann::json(t.value)}, {"worker", t.worker}});
      fmt::print("{}\n", out.dump());
    } else {
      int64_t complete = 0, pruned = 0, failed = 0;
      for (const auto& t : trials) {
        complete += t.state == TrialState::Complete;
        pruned += t.state == TrialState::Pruned;
        failed += t.state == TrialState::Failed;
      }
      fmt::print("study {} in {}: {} trials ({} complete, {} pruned, {} failed); this worker ran {}\n", o.name, o.storage, trials.size(), complete,
                 pruned, failed, mine);
      if (auto b = study.best()) fmt::print("best: trial {} value {:.6g} params {}\n", b->number, b->value, b->params.dump());
    }
    if (failed_workers) throw Error("tune", "jobs", fmt::format("{} worker process(es) failed", failed_workers));
    return 0;
  };
}

}  // namespace kotsu::cli
