#include "kotsu/tune/fine_tune.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <thread>

#include "kotsu/core/error.hpp"
#include "kotsu/eval/html_report.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/io/run_file.hpp"
#include "kotsu/train/cross_validate.hpp"
#include "kotsu/train/trainer.hpp"

namespace kotsu {

namespace fs = std::filesystem;

namespace {

// The train options of a trial: the base with the trial's parameters merged in.
TrainOptions trial_options(const TrainOptions& base, const nlohmann::json& params, int64_t number, const std::string& source = "") {
  TrainOptions o = base;
  o.merge_json(params, source.empty() ? fmt::format("trial {}", number) : source);
  o.out = (fs::path(base.out) / fmt::format("trial-{}", number)).string();
  return o;
}

int64_t worker(const FineTuneSearch& s) {
  Study study(s.space, s.study);
  Objective objective = [&](const Trial& t, const Report& report) {
    TrainOptions o = trial_options(s.base, t.params, t.number);
    std::error_code ec;
    fs::remove_all(o.out, ec);  // a re-queued trial (its worker died) starts over
    TrainHooks hooks;
    hooks.quiet = true;
    if (s.cv_folds > 0) {  // the mean of the held-out folds' metric; pruning after each fold on the mean so far
      const std::string key = o.metric == "loss" ? "log_loss" : o.metric;
      CvOptions cv;
      cv.folds = s.cv_folds;
      double sum = 0;
      cv.on_fold = [&](int64_t fold, const nlohmann::json& m) {
        if (!m.contains(key) || !m[key].is_number()) throw Error("search", "metric", "the cv folds have no '" + key + "'");
        sum += m[key].get<double>();
        return report(fold, sum / static_cast<double>(fold));
      };
      nlohmann::json r = cross_validate(o, cv, hooks);
      if (r.value("status", std::string()) == "stopped") throw TrialPruned{};
      return r.at("mean").at(key).get<double>();
    }
    hooks.on_epoch = [&](int64_t epoch, double metric) { return report(epoch, metric); };
    TrainResult r = train_classifier(o, hooks);
    if (r.pruned) throw TrialPruned{};
    return r.best_metric;
  };
  return study.optimize(objective, worker_name(), [&](const Trial& t) {
    if (s.quiet) return;
    fmt::print("trial {:>3} {:<8} {:>8} {}\n", t.number, trial_state_name(t.state),
               std::isnan(t.value) ? std::string("-") : fmt::format("{:.4f}", t.value), t.params.dump());
    std::fflush(stdout);
  });
}

}  // namespace

FineTuneSearch read_search_run_file(const std::string& path) {
  nlohmann::json j = read_run_file(path);
  FineTuneSearch s;
  if (!j.contains("search")) throw Error(path, "search", "missing: the parameters to search (see kotsu tune --help)");
  s.space = SearchSpace::from_json(j["search"], path);
  j.erase("search");
  if (j.contains("tune")) {
    const auto t = j["tune"];
    j.erase("tune");
    if (!t.is_object()) throw Error(path, "tune", "must be a map");
    for (auto& [k, v] : t.items()) {
      const std::string field = "tune." + k;
      try {
        if (k == "trials") s.study.trials = v.get<int64_t>();
        else if (k == "sampler") s.study.sampler = v.get<std::string>();
        else if (k == "pruner") s.study.pruner = v.get<std::string>();
        else if (k == "seed") s.study.seed = v.get<uint64_t>();
        else if (k == "jobs") s.jobs = v.get<int>();
        else if (k == "storage") s.study.storage = v.get<std::string>();
        else if (k == "cv") s.cv_folds = v.get<int64_t>();
        else throw Error(path, field, "unknown key (trials, sampler, pruner, seed, jobs, storage, cv)");
      } catch (const nlohmann::json::exception&) {
        throw Error(path, field, "has the wrong type: " + v.dump());
      }
    }
  }
  s.base.merge_json(j, path);
  return s;
}

nlohmann::json run_fine_tune_search(FineTuneSearch s) {
  if (s.base.out.empty()) throw Error("options", "out", "is required (the search directory)");
  if (s.jobs < 1) throw Error("options", "jobs", "must be >= 1");
  // every parameter must be a train option with a valid value: merge a sample of each branch now
  for (const auto& point : grid_points(s.space, 2)) trial_options(s.base, point, 0, "search (a train option)").validate();
  make_dirs(s.base.out);
  if (s.study.storage.empty()) s.study.storage = (fs::path(s.base.out) / "study.db").string();
  s.study.name = "fine-tune";
  s.study.direction = s.base.metric == "loss" ? Direction::Minimize : Direction::Maximize;
  nlohmann::json identity = s.base.to_json();
  for (const char* k : {"out", "threads", "device"}) identity.erase(k);
  if (s.cv_folds == 1 || s.cv_folds < 0) throw Error("options", "cv", "must be >= 2 folds (or 0: the validation split)");
  identity["cv_folds"] = s.cv_folds;
  s.study.objective = identity;
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (s.base.threads <= 0) s.base.threads = std::max(1, cores / s.jobs);
  { Study create(s.space, s.study); }  // create (or check) the study before workers race to
  const int failed = run_worker_processes(s.jobs, [&] { worker(s); });
  if (failed) throw Error(s.base.out, "jobs", fmt::format("{} worker process(es) failed", failed));
  // the summary
  Study study(s.space, s.study);
  std::vector<Trial> trials = study.trials();
  nlohmann::json list = nlohmann::json::array();
  std::vector<size_t> ranked;
  for (size_t i = 0; i < trials.size(); ++i) {
    const Trial& t = trials[i];
    list.push_back({{"number", t.number}, {"state", trial_state_name(t.state)}, {"params", t.params},
                    {"value", std::isnan(t.value) ? nlohmann::json(nullptr) : nlohmann::json(t.value)},
                    {"reports", t.intermediate.size()}, {"seconds", t.seconds},
                    {"run", (fs::path(s.base.out) / fmt::format("trial-{}", t.number)).string()}});
    if (t.state == TrialState::Complete && !std::isnan(t.value)) ranked.push_back(i);
  }
  const bool maximize = s.study.direction == Direction::Maximize;
  std::stable_sort(ranked.begin(), ranked.end(), [&](size_t a, size_t b) {
    return maximize ? trials[a].value > trials[b].value : trials[a].value < trials[b].value;
  });
  nlohmann::json out = {{"metric", s.base.metric}, {"direction", maximize ? "maximize" : "minimize"}, {"sampler", s.study.sampler},
                        {"pruner", s.study.pruner}, {"budget", s.study.trials}, {"storage", s.study.storage}, {"space", s.space.to_json()},
                        {"trials", list}};
  nlohmann::json board = nlohmann::json::array();
  for (size_t i : ranked) board.push_back(trials[i].number);
  out["leaderboard"] = board;
  if (!ranked.empty()) out["best"] = list[ranked[0]];
  int64_t epochs = 0;
  for (const auto& t : trials) epochs += static_cast<int64_t>(t.intermediate.size());
  out["reports"] = epochs;  // the search's compute: epochs trained, or folds with cv
  out["report_unit"] = s.cv_folds > 0 ? "fold" : "epoch";
  write_atomic((fs::path(s.base.out) / "tune.json").string(), out.dump(2) + "\n");
  write_atomic((fs::path(s.base.out) / "tune.html").string(), tune_report_html(out, s.base.out));
  return out;
}

}  // namespace kotsu
