#include "kotsu/train/cross_validate.hpp"

#include "kotsu/train/auto_strategy.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <numeric>
#include <random>

#include "kotsu/core/error.hpp"
#include "kotsu/data/image_dataset.hpp"
#include "kotsu/data/table.hpp"
#include "kotsu/data/text_dataset.hpp"
#include "kotsu/eval/metrics.hpp"
#include "kotsu/eval/scores.hpp"
#include "kotsu/infer/evaluate.hpp"
#include "kotsu/infer/evaluate_image.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/io/json_file.hpp"
#include "kotsu/models/image_model.hpp"
#include "kotsu/train/progress.hpp"

namespace kotsu {

namespace fs = std::filesystem;

std::vector<int64_t> stratified_folds(const std::vector<int64_t>& y, int64_t k, uint64_t seed) {
  if (k < 2) throw Error("options", "folds", "must be >= 2");
  std::map<int64_t, std::vector<size_t>> by;
  for (size_t i = 0; i < y.size(); ++i) by[y[i]].push_back(i);
  std::mt19937_64 rng(seed);
  std::vector<int64_t> fold(y.size(), -1);
  int64_t next = 0;
  for (auto& [c, rows] : by) {
    std::shuffle(rows.begin(), rows.end(), rng);
    for (size_t i : rows) {
      fold[i] = next;
      next = (next + 1) % k;
    }
  }
  return fold;
}

std::vector<int64_t> group_folds(const std::vector<std::string>& groups, int64_t k) {
  if (k < 2) throw Error("options", "folds", "must be >= 2");
  std::map<std::string, std::vector<size_t>> by;
  for (size_t i = 0; i < groups.size(); ++i) by[groups[i]].push_back(i);
  if (static_cast<int64_t>(by.size()) < k)
    throw Error("options", "group_col", fmt::format("has {} groups, fewer than the {} folds", by.size(), k));
  std::vector<std::pair<std::string, size_t>> order;
  for (auto& [g, rows] : by) order.emplace_back(g, rows.size());
  std::stable_sort(order.begin(), order.end(), [](auto& a, auto& b) { return a.second > b.second; });
  std::vector<size_t> size(static_cast<size_t>(k), 0);
  std::vector<int64_t> fold(groups.size(), -1);
  for (auto& [g, n] : order) {
    const auto f = static_cast<size_t>(std::min_element(size.begin(), size.end()) - size.begin());
    size[f] += n;
    for (size_t i : by[g]) fold[i] = static_cast<int64_t>(f);
  }
  return fold;
}

namespace {

struct Labelled {
  std::vector<int64_t> y;
  std::vector<std::string> labels;
  std::vector<size_t> lines;  // text: line of each row (0 for pictures)
  std::vector<std::string> names;  // pictures: file of each row
  bool images = false;
};

Labelled read_labels(const TrainOptions& o) {
  Labelled l;
  if (is_image_model_dir(o.model)) {
    ImageDataset d = load_image_dataset(o.data);
    l.images = true;
    l.labels = o.labels.empty() ? d.classes : o.labels;
    l.y = remap_targets(d, l.labels);
    for (size_t i = 0; i < d.size(); ++i) l.names.push_back(d.name(i));
    l.lines.assign(d.size(), 0);
  } else {
    TextDataset d = load_text_dataset(o.data, o.columns);
    l.labels = o.labels.empty() ? collect_labels(d) : o.labels;
    l.y = label_ids(d, l.labels);
    l.lines = d.lines;
  }
  return l;
}

std::vector<std::string> read_groups(const std::string& data, const std::string& col, size_t rows) {
  if (fs::is_directory(data)) throw Error(data, "group_col", "a class-folder tree has no columns: give the pictures as a CSV of path,label,group");
  Table t = read_table(data);
  const size_t c = t.column(col, "--group-col");
  std::vector<std::string> g;
  for (size_t i = 0; i < t.rows.size(); ++i) {
    if (t.rows[i][c].empty()) throw Error(data, fmt::format("line {}, column '{}'", t.lines[i], col), "empty group");
    g.push_back(t.rows[i][c]);
  }
  if (g.size() != rows) throw Error(data, "group_col", "the group column does not line up with the rows");
  return g;
}

// The summary numbers of one evaluation report.
nlohmann::ordered_json fold_metrics(const nlohmann::json& r) {
  nlohmann::ordered_json m;
  m["accuracy"] = r.at("accuracy");
  m["macro_f1"] = r.at("macro").at("f1");
  m["weighted_f1"] = r.at("weighted").at("f1");
  if (r.contains("scores")) {
    const auto& s = r["scores"];
    m["log_loss"] = s.at("log_loss");
    m["roc_auc"] = s.at("roc_auc").is_object() ? s["roc_auc"].at("macro") : s.at("roc_auc");
    m["average_precision"] = s.at("average_precision").at("mean");
    m["ece"] = s.at("ece");
  }
  return m;
}

bool finished(const std::string& run_dir) {
  const std::string p = (fs::path(run_dir) / "run.json").string();
  return file_exists(p) && read_json(p).value("status", "") == "finished";
}

}  // namespace

nlohmann::json cross_validate(const TrainOptions& given, const CvOptions& cv, const TrainHooks& hooks) {
  if (!given.rows.empty()) throw Error("options", "rows", "is chosen by cross-validation; leave it out");
  if (!given.val_data.empty()) throw Error("options", "val_data", "each fold holds out its own validation split; leave it out");
  if (given.out.empty()) throw Error("options", "out", "is required (the cv directory)");
  given.validate();
  TrainOptions base = given;
  // every fold trains the same strategy, chosen on all the rows (a fold's share could fall on the other side)
  const ResolvedDefaults why = resolve_defaults(base, false, hooks.workers != nullptr);
  Progress progress(hooks.quiet);
  if (!why.strategy_why.empty()) progress.log(fmt::format("strategy auto: {}, {}", base.strategy, why.strategy_why));
  if (!why.balance_why.empty()) progress.log(fmt::format("balance auto: {}, {}", base.balance, why.balance_why));
  const fs::path out(base.out);
  const std::string plan_path = (out / "cv-plan.json").string();
  Labelled data = read_labels(base);
  const size_t n = data.y.size();
  nlohmann::json plan;
  if (file_exists(plan_path)) {  // a resumed cv keeps its folds
    plan = read_json(plan_path);
    if (plan.at("rows").get<size_t>() != n || plan.at("data") != base.data)
      throw Error(plan_path, "", "was planned for other data; use another --out");
    progress.log("resuming cross-validation in " + base.out);
  } else {
    if (fs::exists(out) && !fs::is_empty(out)) throw Error(base.out, "", "exists and is not empty (a cv directory holds cv-plan.json)");
    if (cv.folds < 2 || static_cast<size_t>(cv.folds) > n) throw Error("options", "folds", fmt::format("must be in [2, {}]", n));
    std::vector<int64_t> fold = cv.group_col.empty() ? stratified_folds(data.y, cv.folds, base.seed)
                                                     : group_folds(read_groups(base.data, cv.group_col, n), cv.folds);
    TrainOptions o = base;
    o.labels = data.labels;
    plan = {{"data", base.data}, {"rows", n}, {"folds", cv.folds}, {"group_col", cv.group_col}, {"labels", data.labels},
            {"fold", fold}, {"options", o.to_json()}};
    make_dirs(base.out);
    write_atomic(plan_path, plan.dump() + "\n");
  }
  const int64_t k = plan.at("folds");
  const auto fold = plan.at("fold").get<std::vector<int64_t>>();
  const auto labels = plan.at("labels").get<std::vector<std::string>>();
  const auto nl = static_cast<int64_t>(labels.size());
  std::vector<double> oof(n * labels.size(), 0.0);
  std::vector<int64_t> oof_fold(n, -1);
  nlohmann::ordered_json per_fold = nlohmann::ordered_json::array();
  for (int64_t f = 0; f < k; ++f) {
    const std::string dir = (out / fmt::format("fold-{}", f + 1)).string();
    const std::string held_path = (fs::path(dir) / "heldout.json").string();
    std::vector<int64_t> train_rows, test_rows;
    for (size_t i = 0; i < n; ++i) (fold[i] == f ? test_rows : train_rows).push_back(static_cast<int64_t>(i));
    nlohmann::json held;
    if (file_exists(held_path)) {
      held = read_json(held_path);
    } else {
      TrainOptions o = base;
      o.out = dir;
      o.rows = train_rows;
      o.labels = labels;
      if (fs::exists(fs::path(dir) / "trainer_state.json")) {
        progress.log(fmt::format("fold {}/{}: resuming", f + 1, k));
        resume_classifier(dir, hooks);
      } else {
        fs::remove_all(dir);  // killed before its first checkpoint: start the fold again
        progress.log(fmt::format("fold {}/{}: training on {} rows, testing on {}", f + 1, k, train_rows.size(), test_rows.size()));
        train_classifier(o, hooks);
      }
      if (!finished(dir)) {  // stopped (tests' stop_after_epoch): resume later
        nlohmann::json partial = {{"status", "stopped"}, {"fold", f + 1}, {"folds", k}};
        return partial;
      }
      EvalResult r = data.images ? evaluate_image_run(dir, base.data, 64, base.device, base.skip_bad, nullptr, nullptr, test_rows)
                                 : evaluate_run(dir, base.data, base.columns, 64, base.device, nullptr, test_rows);
      if (r.truth.size() != test_rows.size()) throw Error(base.data, "", "pictures of the held-out fold were skipped as unreadable; cv needs them all");
      held = {{"rows", test_rows}, {"probs", r.probs}, {"report", r.report}};
      write_atomic(held_path, held.dump() + "\n");
    }
    const auto rows = held.at("rows").get<std::vector<int64_t>>();
    const auto probs = held.at("probs").get<std::vector<double>>();
    for (size_t j = 0; j < rows.size(); ++j) {
      const auto i = static_cast<size_t>(rows[j]);
      std::copy(probs.begin() + static_cast<long>(j * labels.size()), probs.begin() + static_cast<long>((j + 1) * labels.size()),
                oof.begin() + static_cast<long>(i * labels.size()));
      oof_fold[i] = f;
    }
    nlohmann::ordered_json fm = fold_metrics(held.at("report"));
    fm["fold"] = f + 1;
    fm["test_rows"] = rows.size();
    per_fold.push_back(fm);
    progress.log(fmt::format("fold {}/{}: accuracy {:.4f}  macro_f1 {:.4f}", f + 1, k, fm["accuracy"].get<double>(),
                             fm["macro_f1"].get<double>()));
    if (cv.on_fold && cv.on_fold(f + 1, nlohmann::json(fm)) && f + 1 < k) {
      nlohmann::json stopped = {{"status", "stopped"}, {"data", base.data}, {"folds", k}, {"folds_done", f + 1}, {"per_fold", per_fold}};
      write_atomic((out / "cv.json").string(), stopped.dump(2) + "\n");
      return stopped;
    }
  }
  // mean and sample standard deviation of every per-fold number; pooled out-of-fold metrics
  nlohmann::ordered_json mean, stdev;
  for (auto& [name, v] : per_fold[0].items()) {
    if (name == "fold" || name == "test_rows") continue;
    std::vector<double> xs;
    for (auto& fm : per_fold)
      if (fm[name].is_number()) xs.push_back(fm[name].get<double>());
    if (xs.empty()) continue;
    const double m = std::accumulate(xs.begin(), xs.end(), 0.0) / static_cast<double>(xs.size());
    double ss = 0;
    for (double x : xs) ss += (x - m) * (x - m);
    mean[name] = m;
    stdev[name] = xs.size() > 1 ? std::sqrt(ss / static_cast<double>(xs.size() - 1)) : 0.0;
  }
  std::vector<int64_t> pred(n);
  std::string lines;
  for (size_t i = 0; i < n; ++i) {
    const double* p = oof.data() + i * labels.size();
    pred[i] = std::max_element(p, p + nl) - p;
    nlohmann::ordered_json j;
    j["row"] = i;
    j["fold"] = oof_fold[i] + 1;
    if (data.images) j["image"] = data.names[i];
    else j["line"] = data.lines[i];
    j["label"] = labels[static_cast<size_t>(data.y[i])];
    j["predicted"] = labels[static_cast<size_t>(pred[i])];
    j["confidence"] = p[pred[i]];
    j["label_probability"] = p[data.y[i]];
    nlohmann::ordered_json pj;
    for (size_t c = 0; c < labels.size(); ++c) pj[labels[c]] = p[c];
    j["probabilities"] = pj;
    lines += j.dump() + "\n";
  }
  write_atomic((out / "oof.jsonl").string(), lines);
  nlohmann::json pooled = metrics_json(classification_metrics(data.y, pred, nl), labels);
  pooled["scores"] = score_report(data.y, oof, nl, labels);
  nlohmann::ordered_json summary;
  summary["status"] = "finished";
  summary["data"] = base.data;
  summary["folds"] = k;
  summary["grouped_by"] = plan.value("group_col", "");
  summary["rows"] = n;
  summary["mean"] = mean;
  summary["std"] = stdev;
  summary["per_fold"] = per_fold;
  summary["out_of_fold"] = pooled;
  write_atomic((out / "cv.json").string(), summary.dump(2) + "\n");
  return nlohmann::json(summary);
}

}  // namespace kotsu
