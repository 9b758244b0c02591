#include "kotsu/tune/fine_tune.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <thread>

#include "kotsu/core/error.hpp"
#include "kotsu/eval/html_report.hpp"
#include "kotsu/infer/evaluate.hpp"
#include "kotsu/infer/evaluate_image.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/io/json_file.hpp"
#include "kotsu/io/run_file.hpp"
#include "kotsu/models/causal_lm.hpp"
#include "kotsu/models/image_model.hpp"
#include "kotsu/train/auto_strategy.hpp"
#include "kotsu/train/cross_validate.hpp"
#include "kotsu/train/lm_trainer.hpp"
#include "kotsu/train/trainer.hpp"

namespace kotsu {

namespace fs = std::filesystem;

namespace {

// The train options of a trial: the base with the trial's parameters merged in. Trials are ranked on
// validation scores: a contrastive trial validated without cross-validation holds out a split as the others
// do (its default out-of-fold scores, on embeddings tuned on every fold, would be optimistic next to them).
TrainOptions trial_options(const TrainOptions& base, const nlohmann::json& params, int64_t number, const std::string& source = "", int64_t cv_folds = 0) {
  TrainOptions o = base;
  o.merge_json(params, source.empty() ? fmt::format("trial {}", number) : source);
  o.out = (fs::path(base.out) / fmt::format("trial-{}", number)).string();
  if (o.strategy == "contrastive" && cv_folds == 0 && o.validation && o.val_data.empty() && o.val_fraction == 0) o.val_fraction = 0.1;
  return o;
}

int64_t worker(const FineTuneSearch& s) {
  Study study(s.space, s.study);
  Objective objective = [&](const Trial& t, const Report& report) {
    TrainOptions o = trial_options(s.base, t.params, t.number, "", s.cv_folds);
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

// The epoch at which a finished trial's run was best (the median over folds of a cv trial); 0: unknown.
int64_t best_epoch_of(const std::string& trial_dir) {
  std::vector<int64_t> epochs;
  auto add = [&](const fs::path& run_json) {
    if (!fs::exists(run_json)) return;
    const nlohmann::json j = read_json(run_json.string());
    if (j.contains("best_metric") && j["best_metric"].value("epoch", 0) > 0) epochs.push_back(j["best_metric"]["epoch"].get<int64_t>());
  };
  add(fs::path(trial_dir) / "run.json");
  if (fs::exists(trial_dir))
    for (const auto& e : fs::directory_iterator(trial_dir))
      if (e.is_directory() && e.path().filename().string().rfind("fold-", 0) == 0) add(e.path() / "run.json");
  if (epochs.empty()) return 0;
  std::sort(epochs.begin(), epochs.end());
  return epochs[epochs.size() / 2];
}

// The best configuration trained on train+validation (validation: false) for its best trial's epochs into
// OUT/final; a finished final run with the same options is kept, an interrupted one resumed. Then the
// test evaluation, when a test file is given.
nlohmann::json final_fit(const FineTuneSearch& s, const nlohmann::json& best) {
  const int64_t number = best.at("number").get<int64_t>();
  TrainOptions o = trial_options(s.base, best.at("params"), number);
  o.out = (fs::path(s.base.out) / "final").string();
  o.validation = false;
  o.threads = 0;  // every core: the workers are done
  const int64_t epochs = best_epoch_of(best.at("run").get<std::string>());
  if (epochs > 0) o.epochs = epochs;
  o.validate();
  const std::string run_json = (fs::path(o.out) / "run.json").string();
  nlohmann::json same = o.to_json();
  same.erase("threads");
  bool done = false, resume = false;
  if (file_exists(run_json)) {
    nlohmann::json rj = read_json(run_json);
    nlohmann::json had = rj.value("options", nlohmann::json::object());
    had.erase("threads");
    if (had == same) (rj.value("status", std::string()) == "finished" ? done : resume) = true;
  }
  TrainHooks hooks;
  hooks.quiet = true;
  if (!s.quiet && done) fmt::print("final: kept {} (trial {}'s configuration, trained before)\n", o.out, number);
  else if (!s.quiet) fmt::print("final: trial {}'s configuration on train+validation for {} epoch(s), into {}\n", number, o.epochs, o.out);
  if (resume && fs::exists(fs::path(o.out) / "trainer_state.json")) {
    resume_classifier(o.out, hooks);
  } else if (!done) {
    std::error_code ec;
    fs::remove_all(o.out, ec);  // another best (the study grew) or a run killed before its first checkpoint
    train_classifier(o, hooks);
  }
  const nlohmann::json rj = read_json(run_json);
  nlohmann::json out = {{"run", o.out}, {"trial", number}, {"params", best.at("params")}, {"epochs", o.epochs},
                        {"examples", rj.value("n_train", 0)}, {"validation_value", best.at("value")}};
  if (!s.test_data.empty()) {
    const EvalResult r = is_image_model_dir(o.out) ? evaluate_image_run(o.out, s.test_data, 64, o.device, o.skip_bad)
                                                   : evaluate_run(o.out, s.test_data, o.columns, 64, o.device);
    const std::string report = (fs::path(o.out) / ("eval-" + fs::path(s.test_data).stem().string() + ".json")).string();
    write_atomic(report, r.report.dump(2) + "\n");
    const ClassificationMetrics& m = r.metrics;
    out["test"] = {{"data", s.test_data}, {"report", report}, {"examples", m.n}, {"accuracy", m.accuracy}, {"macro_f1", m.macro_f1},
                   {"weighted_f1", m.weighted_f1}, {"log_loss", m.log_loss}, {"metric", s.base.metric}, {"value", m.get(s.base.metric)}};
  }
  return out;
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
    // a compute budget without a trial count: as many trials as the budget allows
    if (t.contains("budget") && !t.contains("trials")) s.study.trials = std::numeric_limits<int64_t>::max();
    for (auto& [k, v] : t.items()) {
      const std::string field = "tune." + k;
      try {
        if (k == "trials") s.study.trials = v.get<int64_t>();
        else if (k == "budget") s.study.max_reports = v.get<int64_t>();
        else if (k == "sampler") s.study.sampler = v.get<std::string>();
        else if (k == "pruner") s.study.pruner = v.get<std::string>();
        else if (k == "prune_after") s.prune_after = v.get<int64_t>();
        else if (k == "seed") s.study.seed = v.get<uint64_t>();
        else if (k == "jobs") s.jobs = v.get<int>();
        else if (k == "storage") s.study.storage = v.get<std::string>();
        else if (k == "cv") s.cv_folds = v.get<int64_t>();
        else if (k == "final") s.final_fit = v.get<bool>();
        else if (k == "multivariate") s.study.tpe.multivariate = v.get<bool>();
        else if (k == "test") s.test_data = v.get<std::string>();
        else throw Error(path, field, "unknown key (trials, budget, sampler, pruner, prune_after, seed, jobs, storage, cv, final, test, multivariate)");
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
  if (is_causal_lm_dir(s.base.model))
    throw Error(s.base.model, "model", "is a causal LM: kotsu tune searches classifier fine-tuning; tuning instruction-tuning runs is not supported yet");
  if (s.jobs < 1) throw Error("options", "jobs", "must be >= 1");
  // every parameter must be a train option with a valid value: merge a sample of each branch now
  for (const auto& point : grid_points(s.space, 2)) trial_options(s.base, point, 0, "search (a train option)").validate();
  if (!s.test_data.empty() && !s.final_fit) throw Error("options", "test", "needs the final retrain (final: true) to have a model to test");
  if (!s.test_data.empty() && !fs::exists(s.test_data)) throw Error(s.test_data, "test", "no such file or directory");
  // --strategy auto is chosen once for the whole search, and the epochs (the pruner's budget) with it
  s.base.validate();
  const ResolvedDefaults why = resolve_defaults(s.base, false, false);
  if (!why.strategy_why.empty() && !s.quiet) fmt::print("strategy auto: {}, {}\n", s.base.strategy, why.strategy_why);
  if (!why.balance_why.empty() && !s.quiet) fmt::print("balance auto: {}, {}\n", s.base.balance, why.balance_why);
  make_dirs(s.base.out);
  if (s.study.storage.empty()) s.study.storage = (fs::path(s.base.out) / "study.db").string();
  s.study.name = "fine-tune";
  s.study.direction = s.base.metric == "loss" ? Direction::Minimize : Direction::Maximize;
  nlohmann::json identity = s.base.to_json();
  for (const char* k : {"out", "threads", "device"}) identity.erase(k);
  if (s.cv_folds == 1 || s.cv_folds < 0) throw Error("options", "cv", "must be >= 2 folds (or 0: the validation split)");
  identity["cv_folds"] = s.cv_folds;
  s.study.objective = identity;
  const int64_t steps = s.cv_folds > 0 ? s.cv_folds : s.base.epochs;
  if (s.prune_after < 0 || s.prune_after > steps)
    throw Error("options", "prune_after", fmt::format("must be between 1 and the trial's {} {} (0: automatic), got {}", steps,
                                                      s.cv_folds > 0 ? "folds" : "epochs", s.prune_after));
  if (s.prune_after == 0) s.prune_after = s.cv_folds > 0 ? 1 : (s.base.epochs + 1) / 2;
  s.study.pruning.n_warmup_steps = static_cast<int>(s.prune_after);
  s.study.pruning.min_resource = static_cast<int>(s.prune_after);
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
                        {"pruner", s.study.pruner}, {"prune_after", s.prune_after},
                        {"budget", s.study.trials == std::numeric_limits<int64_t>::max() ? nlohmann::json(nullptr) : nlohmann::json(s.study.trials)},
                        {"budget_reports", s.study.max_reports > 0 ? nlohmann::json(s.study.max_reports) : nlohmann::json(nullptr)}, {"storage", s.study.storage}, {"space", s.space.to_json()},
                        {"trials", list}};
  nlohmann::json board = nlohmann::json::array();
  for (size_t i : ranked) board.push_back(trials[i].number);
  out["leaderboard"] = board;
  if (!ranked.empty()) out["best"] = list[ranked[0]];
  int64_t epochs = 0;
  for (const auto& t : trials) epochs += static_cast<int64_t>(t.intermediate.size());
  out["reports"] = epochs;  // the search's compute: epochs trained, or folds with cv
  out["report_unit"] = s.cv_folds > 0 ? "fold" : "epoch";
  if (s.final_fit && out.contains("best")) out["final"] = final_fit(s, out["best"]);
  write_atomic((fs::path(s.base.out) / "tune.json").string(), out.dump(2) + "\n");
  write_atomic((fs::path(s.base.out) / "tune.html").string(), tune_report_html(out, s.base.out));
  return out;
}

}  // namespace kotsu
