#include "kotsu/train/trainer.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <random>

#include "kotsu/core/error.hpp"
#include "kotsu/core/runtime.hpp"
#include "kotsu/dist/grad_sync.hpp"
#include "kotsu/dist/process_group.hpp"
#include "kotsu/dist/shard.hpp"
#include "kotsu/eval/decision.hpp"
#include "kotsu/eval/metrics.hpp"
#include "kotsu/infer/predict.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/io/safetensors.hpp"
#include "kotsu/models/lora.hpp"
#include "kotsu/train/adamw.hpp"
#include "kotsu/train/auto_strategy.hpp"
#include "kotsu/train/contrastive.hpp"
#include "kotsu/train/feature_cache.hpp"
#include "kotsu/train/head_fit.hpp"
#include "kotsu/train/precision.hpp"
#include "kotsu/train/progress.hpp"
#include "kotsu/train/run_files.hpp"
#include "kotsu/train/sampling.hpp"
#include "kotsu/train/schedule.hpp"
#include "kotsu/train/task.hpp"
#include "kotsu/train/trainer_state.hpp"

namespace kotsu {

namespace fs = std::filesystem;

namespace {

constexpr const char* kVersion = "0.1.0";
// strategy contrastive: examples of one class kept together in a batch (train/contrastive)
constexpr size_t kContrastivePerClass = 4;

bool higher_is_better(const std::string& metric) { return metric != "loss"; }

// head and contrastive without --val-data (TrainOptions::holds_out): nothing held out, validated on the
// out-of-fold logits of the head's cross-validation (contrastive: once, after its last epoch).
bool validates_out_of_fold(const TrainOptions& o) { return o.validation && o.val_data.empty() && !o.holds_out(); }

// "balanced" loss weights, as scikit-learn's class_weight="balanced": n / (classes * count(class)).
// Sum of |w| over the trainable weight matrices and kernels (what --l1 penalises): not embeddings (their
// gradients are sparse rows; a dense L1 gradient would touch every row), biases or norms.
torch::Tensor l1_norm(Classifier& model) {
  torch::Tensor sum;
  for (const auto& item : model.named_parameters()) {
    const torch::Tensor& p = item.value();
    if (p.requires_grad() && p.dim() >= 2 && item.key().find("embeddings") == std::string::npos)
      sum = sum.defined() ? sum + p.abs().sum() : p.abs().sum();
  }
  return sum.defined() ? sum : torch::zeros({});
}

torch::Tensor balanced_class_weights(const std::vector<int64_t>& y, size_t classes) {
  std::vector<double> count(classes, 0.0);
  for (int64_t t : y) count[static_cast<size_t>(t)] += 1;
  std::vector<float> w(classes);
  for (size_t c = 0; c < classes; ++c)
    w[c] = count[c] > 0 ? static_cast<float>(static_cast<double>(y.size()) / (static_cast<double>(classes) * count[c])) : 1.0f;
  return torch::tensor(w);
}

bool no_decay(const std::string& name) {
  return name.size() >= 5 && (name.compare(name.size() - 5, 5, ".bias") == 0 || name.find("LayerNorm") != std::string::npos ||
                              name.find("layer_norm") != std::string::npos);
}

// Marks parameters trainable per strategy; returns the trainable ones with their names. lora: adapters on
// the encoder's dense layers (`lora` receives their options), the head trained fully (PEFT's modules_to_save).
std::vector<std::pair<std::string, torch::Tensor>> apply_strategy(Classifier& m, const TrainOptions& o, LoraOptions* lora) {
  std::vector<std::pair<std::string, torch::Tensor>> trainable;
  if (o.strategy == "lora") {
    lora->shape = {o.lora_r, o.lora_alpha, o.lora_dropout, false};
    lora->target_modules = lora_targets_from_spec(o.lora_targets, m);
    lora->seed = o.seed;
    for (auto& g : m.param_groups())
      if (g.name == "head")
        for (auto& [n, t] : g.params) {
          const std::string module = n.substr(0, n.rfind('.'));
          if (std::find(lora->modules_to_save.begin(), lora->modules_to_save.end(), module) == lora->modules_to_save.end()) lora->modules_to_save.push_back(module);
        }
    apply_lora(m, *lora);
    for (const auto& p : m.named_parameters(true))
      if (p.value().requires_grad()) trainable.emplace_back(p.key(), p.value());
    return trainable;
  }
  const int64_t L = m.num_layers();
  for (auto& g : m.param_groups()) {
    bool train = o.strategy == "full" || g.name == "head";
    // contrastive: the encoder learns the embedding's geometry; the head is fitted on it after each epoch
    // (a BERT pooler outside a mean-pooled embedding gets no gradient, so AdamW leaves it as it is)
    if (o.strategy == "contrastive") train = g.name != "head";
    if (o.strategy == "partial") {
      if (g.name == "pooler") train = true;
      if (g.name.rfind("layer.", 0) == 0 && std::stoll(g.name.substr(6)) >= L - o.unfreeze) train = true;
    }
    for (auto& [n, t] : g.params) {
      t.set_requires_grad(train);
      if (train) trainable.emplace_back(n, t);
    }
  }
  return trainable;
}

struct Run {
  TrainOptions o;
  std::unique_ptr<ClassifierTask> task;
  LoraOptions lora;  // strategy lora: the adapters' options (saved as a PEFT adapter beside the merged model)
  ResolvedDefaults why;  // --strategy auto and --balance auto: why they chose as they did ("" when named)
  int64_t recall_class = -1;  // --target-recall: the class's index in labels() (-1: none), and its target
  double recall_target = 0;
  torch::Device device{torch::kCPU};
  const std::vector<std::string>& labels() const { return task->labels(); }
};

// The head fit (L-BFGS on all features at once) cannot resample; every --balance mode weights its loss.
torch::Tensor head_class_weights(const Run& r) {
  if (r.o.balance == "none" && r.o.class_weights != "balanced") return {};
  return balanced_class_weights(r.task->targets(true), r.labels().size()).to(r.device);
}

// The head fitted alone on `x`, the features of the training examples, with the run's seed, smoothing and weights.
HeadFit fit_head_on(Run& r, const torch::Tensor& x) {
  const torch::Tensor y = torch::tensor(r.task->targets(true), torch::kLong).to(r.device);
  return fit_head(r.task->model(), x, y, r.o.seed, r.o.label_smoothing, head_class_weights(r));
}

// Says so when the training classes are imbalanced (the largest at least kImbalanceRatio times the smallest,
// as --balance auto decides), naming them.
void note_imbalance(const Run& r, Progress& progress) {
  std::vector<int64_t> counts(r.labels().size(), 0);
  for (int64_t y : r.task->targets(true)) ++counts[static_cast<size_t>(y)];
  const auto [lo, hi] = std::minmax_element(counts.begin(), counts.end());
  if (counts.size() < 2 || static_cast<double>(*hi) < kImbalanceRatio * static_cast<double>(std::max<int64_t>(*lo, 1))) return;
  const auto name = [&](auto it) { return r.labels()[static_cast<size_t>(it - counts.begin())]; };
  progress.log(fmt::format("imbalanced classes: '{}' has {} training examples, '{}' {} ({:.1f}:1); {}; per-class recall is reported "
                           "at the end{}",
                           name(hi), *hi, name(lo), *lo, static_cast<double>(*hi) / static_cast<double>(std::max<int64_t>(*lo, 1)),
                           !r.why.balance_why.empty() ? fmt::format("rebalanced by default (--balance auto: {})", r.o.balance)
                           : r.o.balance != "none" || r.o.class_weights != "none" ? "rebalanced as --balance/--class-weights ask"
                                                                                  : "not rebalanced (--balance none; class-weights or oversample would)",
                           r.o.target_recall.empty() ? " (--target-recall CLASS=R sets a decision threshold for a class that must not be missed)" : ""));
}

Run prepare(const TrainOptions& o, const std::vector<std::string>& fixed_labels, Progress& progress, const ResolvedDefaults& why) {
  Run r;
  r.o = o;
  r.why = why;
  r.device = torch::Device(o.device);
  r.task = make_task(o, fixed_labels.empty() ? o.labels : fixed_labels, progress);
  if (!o.target_recall.empty()) {  // a class the data does not have is refused before any training
    const auto [cls, target] = parse_target_recall(o.target_recall);
    const auto at = std::find(r.labels().begin(), r.labels().end(), cls);
    if (at == r.labels().end())
      throw Error("options", "target_recall", "'" + cls + "' is not one of the labels (" + fmt::format("{}", fmt::join(r.labels(), ", ")) + ")");
    r.recall_class = at - r.labels().begin();
    r.recall_target = target;
  }
  note_imbalance(r, progress);
  return r;
}

// The best epoch's record of the validation split: each class's recall, and with --target-recall the
// class's decision threshold (eval/decision) chosen on these logits.
// `targets`: the labels of vlogits' rows (the validation split's, or the training rows' for out-of-fold logits).
void record_best_validation(const Run& r, const torch::Tensor& vlogits, const std::vector<int64_t>& targets, const ClassificationMetrics& m,
                            TrainerState& s) {
  nlohmann::json per_class = nlohmann::json::object();
  for (size_t c = 0; c < r.labels().size() && c < m.recall.size(); ++c)
    if (m.support[c] > 0) per_class[r.labels()[c]] = m.recall[c];
  s.best_recall = per_class;
  s.decision = nullptr;
  if (r.recall_class < 0) return;
  const auto probs = torch::softmax(vlogits.to(torch::kCPU).to(torch::kFloat), 1).contiguous();
  const std::vector<float> p(probs.data_ptr<float>(), probs.data_ptr<float>() + probs.numel());
  const ThresholdChoice t = choose_threshold(p, probs.size(1), targets, r.recall_class, r.recall_target, r.o.out + "/run.json");
  s.decision = {{"class", r.labels()[static_cast<size_t>(r.recall_class)]}, {"target_recall", r.recall_target}, {"threshold", t.threshold}, {"val_recall", t.recall},
                {"val_precision", t.precision}, {"val_examples_of_class", t.positives}};
}

// The end of a run's log: the lowest validation recalls of the best epoch, and the decision rule if any.
void log_best_validation(const TrainerState& s, Progress& progress) {
  if (s.best_recall.is_object() && s.best_recall.size() > 1) {
    std::vector<std::pair<double, std::string>> by;
    for (auto it = s.best_recall.begin(); it != s.best_recall.end(); ++it) by.emplace_back(it.value().get<double>(), it.key());
    std::sort(by.begin(), by.end());
    std::string text;
    for (size_t i = 0; i < by.size() && i < 8; ++i) text += fmt::format("{}{} {:.3f}", i ? ", " : "", by[i].second, by[i].first);
    progress.log(fmt::format("validation recall per class{}: {}", by.size() > 8 ? " (the 8 lowest)" : "", text));
  }
  if (s.decision.is_object())
    progress.log(fmt::format("decision: '{}' whenever its probability is >= {:.4g} (validation: recall {:.3f} of {} examples for a target of {:g}, "
                             "precision {:.3f}); eval, predict and serve use it",
                             s.decision["class"].get<std::string>(), s.decision["threshold"].get<double>(), s.decision["val_recall"].get<double>(),
                             s.decision["val_examples_of_class"].get<size_t>(), s.decision["target_recall"].get<double>(),
                             s.decision["val_precision"].get<double>()));
}

void write_run_json(const Run& r, const TrainerState& s, const std::string& status) {
  nlohmann::ordered_json j;
  j["kotsu_version"] = kVersion;
  j["status"] = status;
  j["task"] = r.task->kind();
  j["options"] = r.o.to_json();
  j["labels"] = r.labels();
  j["n_train"] = r.task->targets(true).size();
  j["n_val"] = r.task->targets(false).size();
  if (!r.why.strategy_why.empty()) j["strategy_chosen"] = r.why.strategy_why;
  if (!r.why.balance_why.empty()) j["balance_chosen"] = r.why.balance_why;
  if (validates_out_of_fold(r.o))
    j["validation"] = r.o.strategy == "contrastive"
                          ? "out-of-fold: the head's cross-validation over every training example, on embeddings tuned on all of them (optimistic)"
                          : "out-of-fold: the head's cross-validation over every training example";
  j["best_metric"] = {{"name", r.o.metric}, {"value", s.best}, {"epoch", s.best_epoch}};
  j["stopped_early"] = s.stopped_early;
  if (s.best_recall.is_object()) j["val_recall_per_class"] = s.best_recall;
  if (s.decision.is_object()) j["decision"] = s.decision;
  j["history"] = s.history;
  write_atomic((fs::path(r.o.out) / "run.json").string(), j.dump(2) + "\n");
}

// The validation metrics into an epoch's history entry; returns them as the log line shows them.
std::string record_validation(const ClassificationMetrics& m, nlohmann::json& h) {
  h.update({{"val_loss", m.log_loss}, {"val_accuracy", m.accuracy}, {"val_macro_f1", m.macro_f1}, {"val_weighted_f1", m.weighted_f1}});
  return fmt::format("val_loss {:.4f}  val_accuracy {:.4f}  val_macro_f1 {:.4f}", m.log_loss, m.accuracy, m.macro_f1);
}

// --strategy head: the head fitted once on cached features; recorded as one epoch.
TrainResult fit_head_only(Run& r, TrainerState& s, Progress& progress, const TrainHooks& hooks) {
  const TrainOptions& o = r.o;
  Classifier& model = r.task->model();
  auto t0 = std::chrono::steady_clock::now();
  bool hit_train = false, hit_val = false;
  const torch::Tensor x = cached_features(o, true, [&] { return r.task->features(true); }, &hit_train);
  torch::Tensor x_val;
  const bool out_of_fold = validates_out_of_fold(o);
  if (o.validation && !out_of_fold) x_val = cached_features(o, false, [&] { return r.task->features(false); }, &hit_val);
  const torch::Tensor y = torch::tensor(r.task->targets(true), torch::kLong).to(r.device);
  const bool reused = hit_train && (hit_val || !x_val.defined());
  progress.log(fmt::format("feature cache: {} {} examples in {:.1f}s; the head is fitted on cached features", reused ? "reused the features of" : "encoded",
                           x.size(0) + (x_val.defined() ? x_val.size(0) : 0), std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()));
  t0 = std::chrono::steady_clock::now();
  HeadFit fit = fit_head(model, x, y, o.seed, o.label_smoothing, head_class_weights(r));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double train_loss;
  {
    torch::NoGradGuard ng;
    train_loss = torch::nn::functional::cross_entropy(model.head(x).to(torch::kFloat), y).item<double>();
  }
  nlohmann::json h = {{"epoch", 1}, {"step", 0}, {"train_loss", train_loss}};
  std::string val_text = "no validation";
  s.best = s.best_loss = std::nan("");
  // validation: the held-out split when there is one (--val-data), else the out-of-fold logits of the
  // cross-validation that chose l2, over every training example
  if (out_of_fold && !fit.oof_logits.defined()) val_text = "too few examples to cross-validate: no validation scores";
  if (o.validation && (!out_of_fold || fit.oof_logits.defined())) {
    torch::Tensor vlogits;
    if (out_of_fold) {
      vlogits = fit.oof_logits;
    } else {
      torch::NoGradGuard ng;
      vlogits = model.head(x_val);
    }
    const std::vector<int64_t>& targets = r.task->targets(out_of_fold);  // out of fold: the training rows
    const ClassificationMetrics m = score_logits(vlogits, targets).metrics;
    val_text = record_validation(m, h) + (out_of_fold ? fmt::format(" (out of fold, {} folds)", fit.folds) : "");
    s.best = m.get(o.metric);
    s.best_loss = m.log_loss;
    record_best_validation(r, vlogits, targets, m, s);
  }
  h.update({{"l2", fit.l2}, {"seconds", secs}, {"features_reused", reused}});
  s.history.push_back(h);
  s.has_best = true;
  s.best_epoch = s.epoch = 1;
  r.task->save(o.out);
  write_atomic((fs::path(o.out) / "trainer_state.json").string(), s.to_json().dump(2) + "\n");
  write_run_json(r, s, "finished");
  progress.log(fmt::format("head fitted (L-BFGS, l2 {:g} chosen by 3-fold cross-validation from {} strengths, {:.1f}s): train_loss {:.4f}  "
                           "{}; model saved in {}",
                           fit.l2, fit.candidates, secs, train_loss, val_text, o.out));
  log_best_validation(s, progress);
  if (hooks.on_epoch) hooks.on_epoch(1, s.best);  // one fit: nothing left to stop
  return result_of(s, o.out);
}

// The head fitted on the train examples' current features (computed now, eval mode: the encoder has moved).
HeadFit fit_head_on_features(Run& r, Progress& progress, bool log) {
  auto t0 = std::chrono::steady_clock::now();
  HeadFit fit = fit_head_on(r, r.task->features(true));
  if (log)
    progress.log(fmt::format("head fitted on the tuned embeddings (L-BFGS, l2 {:g}, {:.1f}s)", fit.l2,
                             std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()));
  return fit;
}

// Validation logits: all at once in one process; split by contiguous ranges over data-parallel workers
// and gathered, so every worker scores the same logits and takes the same early-stopping decisions.
torch::Tensor validation_logits(Run& r, ProcessGroup* pg) {
  const size_t n = r.task->targets(false).size();
  if (!pg) return r.task->val_logits(0, n);
  const auto [from, to] = worker_range(n, pg->rank(), pg->size());
  const torch::Tensor mine = from < to ? r.task->val_logits(from, to) : torch::zeros({0, static_cast<int64_t>(r.labels().size())});
  return pg->gather_rows(mine, static_cast<int64_t>(from), static_cast<int64_t>(n)).to(r.device);
}

// A worker's share of a global batch's loss: its examples' summed loss weights (1 each, or the class
// weights of a weighted loss, which PyTorch's mean reduction divides by) over the whole batch's.
double loss_share(const std::vector<size_t>& mine, const std::vector<size_t>& global, const std::vector<int64_t>& y, const std::vector<float>& class_w) {
  auto weight = [&](const std::vector<size_t>& idx) {
    double w = 0;
    for (size_t i : idx) w += class_w.empty() ? 1.0 : class_w[static_cast<size_t>(y[i])];
    return w;
  };
  const double total = weight(global);
  return total > 0 ? weight(mine) / total : 0.0;
}

TrainResult run_training(Run& r, TrainerState s, const TrainHooks& hooks, std::unique_ptr<FusedAdamW> opt_holder) {
  const TrainOptions& o = r.o;
  ProcessGroup* pg = hooks.workers;
  const int world = pg ? pg->size() : 1, rank = pg ? pg->rank() : 0;
  const bool lead = rank == 0;  // writes the run directory and reports
  Progress progress(hooks.quiet || !lead);
  Classifier& model = r.task->model();
  FusedAdamW& opt = *opt_holder;

  if (o.strategy == "head") return fit_head_only(r, s, progress, hooks);
  const bool contrastive = o.strategy == "contrastive";
  // validation after every epoch on a held-out split; out of fold (contrastive without one): once, at the end
  const bool out_of_fold = validates_out_of_fold(o), each_epoch = o.validation && !out_of_fold;
  const int64_t n = static_cast<int64_t>(epoch_size(r.task->targets(true), o.balance));
  const int64_t global_batch = o.batch_size * world;
  const int64_t micro_per_epoch = (n + global_batch - 1) / global_batch;
  const int64_t steps_per_epoch = (micro_per_epoch + o.grad_accum - 1) / o.grad_accum;
  const int64_t total_steps = steps_per_epoch * o.epochs;
  const int64_t warmup = static_cast<int64_t>(std::llround(o.warmup_ratio * static_cast<double>(total_steps)));
  const double base_lr = o.effective_lr();
  auto ce_opts = torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(o.label_smoothing);
  std::vector<float> class_w;  // the loss weight of each class (empty: unweighted)
  if (o.class_weights == "balanced" || o.balance == "class-weights") {
    const torch::Tensor w = balanced_class_weights(r.task->targets(true), r.labels().size());
    class_w.assign(w.data_ptr<float>(), w.data_ptr<float>() + w.numel());
    ce_opts.weight(w.to(r.device));
  }
  std::unique_ptr<GradSync> sync;
  if (pg && world > 1) {
    std::vector<torch::Tensor> trainable;
    for (auto& t : model.parameters())
      if (t.requires_grad()) trainable.push_back(t);
    sync = std::make_unique<GradSync>(*pg, trainable, pg->bucket_bytes());
    int64_t bytes = 0;
    for (auto& t : trainable) bytes += t.numel() * static_cast<int64_t>(t.element_size());
    progress.log(fmt::format("data-parallel: {:.1f} MiB of gradients summed over {} workers in {} buckets (up to {} MiB), sent during backward",
                             static_cast<double>(bytes) / 1048576.0, world, sync->buckets(), pg->bucket_bytes() >> 20));
  }

  for (int64_t epoch = s.epoch; epoch < o.epochs; ++epoch) {
    auto t0 = std::chrono::steady_clock::now();
    // dropout masks: rank 0 draws what one process would; the other workers draw their own
    torch::manual_seed(o.seed * 1000003ULL + static_cast<uint64_t>(epoch) + 0x5DEECE66DULL * static_cast<uint64_t>(rank));
    std::mt19937_64 rng(o.seed ^ (0x9E3779B97F4A7C15ULL * static_cast<uint64_t>(epoch + 1)));
    const std::vector<size_t> order = epoch_order(r.task->targets(true), o.balance, rng);
    // the batches one process with batch workers x B takes (every worker computes the same), and this
    // worker's part of each
    const std::vector<std::vector<size_t>> global =
        contrastive ? class_grouped_batches(order, r.task->targets(true), static_cast<size_t>(global_batch), kContrastivePerClass, rng)
                    : r.task->batches(order, static_cast<size_t>(global_batch), rng);
    const std::vector<std::vector<size_t>> batches = pg ? worker_batches(global, rank, world) : global;
    std::vector<std::vector<size_t>> nonempty;
    for (const auto& b : batches)
      if (!b.empty()) nonempty.push_back(b);
    r.task->begin_epoch(nonempty, epoch);
    r.task->set_training(true);
    progress.start(fmt::format("epoch {}/{}", epoch + 1, o.epochs), micro_per_epoch);
    double loss_sum = 0, exposed_ms = 0;
    int64_t seen = 0, synced_steps = 0;
    opt.zero_grad();
    for (int64_t mb = 0; mb < micro_per_epoch; ++mb) {
      const std::vector<size_t>& idx = batches[static_cast<size_t>(mb)];
      const bool step_ends = (mb + 1) % o.grad_accum == 0 || mb + 1 == micro_per_epoch;
      if (sync && step_ends) sync->arm();  // this backward's gradients are summed over the workers as they are ready
      if (!idx.empty()) {  // a worker can have no examples in a short last batch; it still joins the sum
        torch::Tensor y, loss;
        if (contrastive) loss = pair_similarity_loss(r.task->train_features(idx, epoch, opt, y), y);
        else loss = torch::nn::functional::cross_entropy(r.task->train_logits(idx, epoch, opt, y).to(torch::kFloat), y, ce_opts);
        torch::Tensor objective = loss;
        if (o.l1 > 0) objective = objective + o.l1 * l1_norm(model);
        // this worker's share of the global batch's loss (1 in one process)
        const std::vector<size_t>& whole = global[static_cast<size_t>(mb)];
        const double share = sync ? loss_share(idx, whole, r.task->targets(true), class_w) : 1.0;
        (objective * (share / static_cast<double>(o.grad_accum))).backward();
        loss_sum += loss.item<double>() * (sync ? share * static_cast<double>(whole.size()) : static_cast<double>(idx.size()));
        seen += static_cast<int64_t>(idx.size());
      }
      if (step_ends) {
        if (sync) {
          sync->finish();
          exposed_ms += sync->exposed_ms();
          ++synced_steps;
        }
        const double lr = base_lr * schedule_factor(o.schedule, s.global_step, total_steps, warmup);
        opt.step(lr, o.grad_clip);
        ++s.global_step;
      }
      progress.step(mb + 1, seen > 0 ? loss_sum / static_cast<double>(seen) : 0.0, seen);
    }
    progress.finish();
    const double train_secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (pg) {  // the epoch's loss and examples over all workers
      std::vector<torch::Tensor> t{torch::tensor({loss_sum, static_cast<double>(seen)}, torch::kDouble)};
      pg->all_reduce_sum(t);
      loss_sum = t[0][0].item<double>();
      seen = static_cast<int64_t>(std::llround(t[0][1].item<double>()));
    }

    // validation
    opt.flush();
    // contrastive: the head is fitted on the tuned embeddings (those validation scores, the last epoch's saves)
    const bool last = epoch + 1 == o.epochs;
    HeadFit fit;
    if (contrastive && (each_epoch || last)) fit = fit_head_on_features(r, progress, !each_epoch);
    const double lr_now = base_lr * schedule_factor(o.schedule, s.global_step, total_steps, warmup);
    const double ex_per_s = static_cast<double>(seen) / std::max(1e-9, train_secs);
    nlohmann::json h = {{"epoch", epoch + 1}, {"step", s.global_step}, {"train_loss", loss_sum / static_cast<double>(seen)}};
    double value = std::nan(""), val_loss = std::nan("");
    bool improved = last, metric_improved = true;  // without validation each epoch: the last epoch's model
    std::string val_text = out_of_fold ? "(validated after the last epoch)" : "no validation";
    torch::Tensor vlogits;
    ClassificationMetrics m;
    // out of fold: the training rows are the validation rows of the head's cross-validation
    const std::vector<int64_t>& val_targets = r.task->targets(out_of_fold);
    if (each_epoch || (out_of_fold && last && fit.oof_logits.defined())) {
      vlogits = out_of_fold ? fit.oof_logits : validation_logits(r, pg);
      m = score_logits(vlogits, val_targets).metrics;
      value = m.get(o.metric);
      val_loss = m.log_loss;
      // patience counts epochs without a strict improvement of the metric; the saved best checkpoint
      // also moves on a tie (frequent with small validation sets) when the validation loss is lower
      metric_improved = !s.has_best || (higher_is_better(o.metric) ? value > s.best : value < s.best);
      improved = metric_improved || (value == s.best && m.log_loss < s.best_loss);
      val_text = record_validation(m, h) + (out_of_fold ? fmt::format(" (out of fold, {} folds, optimistic)", fit.folds) : "");
    } else if (out_of_fold && last) {
      val_text = "too few examples to cross-validate: no validation scores";
    }
    h.update({{"lr", lr_now}, {"seconds", train_secs}, {"examples_per_second", ex_per_s}});
    if (sync)  // data-parallel: workers, buckets, and the mean time per step spent waiting for gradient sums after backward
      h.update({{"workers", world}, {"gradient_buckets", sync->buckets()},
                {"allreduce_wait_ms_per_step", synced_steps > 0 ? exposed_ms / static_cast<double>(synced_steps) : 0.0}});
    s.history.push_back(h);
    s.bad_epochs = metric_improved ? 0 : s.bad_epochs + 1;
    if (improved) {
      s.best = value;
      s.best_loss = val_loss;
      s.has_best = true;
      s.best_epoch = epoch + 1;
      if (vlogits.defined()) record_best_validation(r, vlogits, val_targets, m, s);
      if (lead) {
        r.task->save(o.out);  // with adapters folded in (models/lora merged_state): an ordinary model directory
        if (o.strategy == "lora") save_peft_adapter(model, r.lora, o.out, fs::absolute(o.model).string(), "SEQ_CLS");
      }
    }
    progress.log(fmt::format("epoch {}/{}  train_loss {:.4f}  {}  {:.1f}s {:.0f} ex/s{}", epoch + 1, o.epochs,
                             loss_sum / static_cast<double>(seen), val_text, train_secs, ex_per_s,
                             improved && each_epoch ? "  *best*" : ""));
    s.epoch = epoch + 1;
    if (o.patience > 0 && s.bad_epochs >= o.patience && s.epoch < o.epochs) s.stopped_early = true;

    // resumable checkpoint: a new folder, then the state file that names it, then drop the old folder
    const std::string prev = s.checkpoint;
    s.checkpoint = fmt::format("checkpoint-{}", s.epoch);
    if (lead) {
      const std::string ck = (fs::path(o.out) / s.checkpoint).string();
      make_dirs(ck);
      NamedTensors w;
      for (auto& [nm, t] : model.state()) w.emplace_back(nm, t);
      save_safetensors(ck + "/model.safetensors", w);
      opt.save_file(ck + "/optimizer.pt");
      write_atomic((fs::path(o.out) / "trainer_state.json").string(), s.to_json().dump(2) + "\n");
      if (!prev.empty() && prev != s.checkpoint) fs::remove_all(fs::path(o.out) / prev);
      write_run_json(r, s, "running");
    }

    if (hooks.stop_after_epoch > 0 && s.epoch >= hooks.stop_after_epoch && s.epoch < o.epochs && !s.stopped_early)
      return result_of(s, o.out);
    if (hooks.on_epoch && hooks.on_epoch(s.epoch, value) && s.epoch < o.epochs && !s.stopped_early) {
      if (lead) write_run_json(r, s, "pruned");
      progress.log(fmt::format("stopped after epoch {} (pruned by the search)", s.epoch));
      TrainResult pr = result_of(s, o.out);
      pr.pruned = true;
      return pr;
    }
    if (s.stopped_early) {
      progress.log(fmt::format("early stopping: no {} improvement for {} epochs", o.metric, o.patience));
      break;
    }
  }
  if (lead) write_run_json(r, s, "finished");
  if (each_epoch) progress.log(fmt::format("best {} {:.4f} at epoch {}; model saved in {}", o.metric, s.best, s.best_epoch, o.out));
  else if (out_of_fold) progress.log(fmt::format("trained {} epochs (nothing held out); {} {:.4f} out of fold; model saved in {}", s.epoch, o.metric, s.best, o.out));
  if (o.validation) log_best_validation(s, progress);
  else progress.log(fmt::format("trained {} epochs without validation; model saved in {}", s.epoch, o.out));
  return result_of(s, o.out);
}

// The automatic choices' reasons a run.json recorded.
ResolvedDefaults chosen_in(const nlohmann::json& run) { return {run.value("strategy_chosen", ""), run.value("balance_chosen", "")}; }

// Linear probing before fine-tuning (Kumar et al., "Fine-Tuning can Distort Pretrained Features and
// Underperform Out-of-Distribution", ICLR 2022): a new head is fitted alone on cached features so full/partial
// fine-tuning starts from a head that already fits. Seeded, so a run and its resume agree (the fitted head is
// in every checkpoint).
void fit_head_first(Run& r, Progress& progress) {
  auto t0 = std::chrono::steady_clock::now();
  const HeadFit fit = fit_head_on(r, cached_features(r.o, true, [&] { return r.task->features(true); }));
  progress.log(fmt::format("head fitted first on cached features (L-BFGS, l2 {:g} of {} tried, cross-validated loss {:.4f}, {:.1f}s); "
                           "now fine-tuning",
                           fit.l2, fit.candidates, fit.cv_loss,
                           std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()));
}

// distributed: no sparse embedding gradients (the workers' gradients are summed as dense buckets)
std::unique_ptr<FusedAdamW> make_optimizer(Run& r, bool distributed) {
  ClassifierTask& task = *r.task;
  const TrainOptions& o = r.o;
  Classifier& model = task.model();
  auto trainable = apply_strategy(model, o, &r.lora);
  std::vector<torch::Tensor> sparse;
  bool embeddings_train = false;
  for (auto& [n, t] : trainable)
    if (n.find("word_embeddings") != std::string::npos) embeddings_train = true;
  if (embeddings_train && model.parameters().front().device().is_cpu() && !distributed) sparse = task.use_sparse_embedding_grads();
  // one decay and one no-decay group per parameter group; with lr_decay < 1 each group below the head
  // trains at lr_decay times the rate of the group above it (discriminative learning rates)
  std::vector<FusedAdamW::Group> groups;
  auto pgroups = model.param_groups();
  double scale = 1.0;
  for (auto g = pgroups.rbegin(); g != pgroups.rend(); ++g) {
    FusedAdamW::Group decay{{}, o.weight_decay, scale}, plain{{}, 0.0, scale};
    for (auto& [n, t] : g->params)
      if (t.requires_grad()) (no_decay(n) ? plain : decay).params.push_back(t);
    if (!decay.params.empty()) groups.push_back(decay);
    if (!plain.params.empty()) groups.push_back(plain);
    scale *= o.lr_decay;
  }
  if (groups.empty()) throw Error("options", "strategy", "leaves no parameter to train");
  return std::make_unique<FusedAdamW>(groups, sparse);
}

void describe(const Run& r, Progress& p) {
  const bool each_epoch = r.o.validation && !validates_out_of_fold(r.o);  // validated after every epoch
  int64_t total = 0, trainable = 0;
  for (auto& t : r.task->model().parameters()) {
    total += t.numel();
    if (t.requires_grad()) trainable += t.numel();
  }
  p.log(fmt::format("model {} ({}){}", r.o.model, r.task->describe_model(),
                    r.o.init == "random" ? ", randomly initialised (--init random)"
                    : r.task->head_initialised() ? fmt::format(", new head for {} labels", r.labels().size()) : ""));
  if (!r.why.strategy_why.empty()) p.log(fmt::format("strategy auto: {}, {}", r.o.strategy, r.why.strategy_why));
  if (validates_out_of_fold(r.o) && r.o.strategy == "contrastive")
    p.log(fmt::format("data {}: all {} examples train for {} epochs (nothing held out), {} labels; validation: the out-of-fold predictions "
                      "of the head's cross-validation on the tuned embeddings, after the last epoch (optimistic: the encoder saw every fold)",
                      r.o.data, r.task->targets(true).size(), r.o.epochs, r.labels().size()));
  else if (validates_out_of_fold(r.o))
    p.log(fmt::format("data {}: all {} examples fit the head, {} labels; validation: the out-of-fold predictions of the cross-validation "
                      "that picks its L2 strength (nothing held out)",
                      r.o.data, r.task->targets(true).size(), r.labels().size()));
  else if (r.o.validation)
    p.log(fmt::format("data {}: {} train / {} validation examples, {} labels", r.o.data, r.task->targets(true).size(),
                      r.task->targets(false).size(), r.labels().size()));
  else
    p.log(fmt::format("data {}{}: all {} examples train (no validation: {} epochs, the last model is kept), {} labels", r.o.data,
                      r.o.val_data.empty() ? "" : " + " + r.o.val_data, r.task->targets(true).size(), r.o.epochs, r.labels().size()));
  if (r.o.strategy == "head")
    p.log(fmt::format("strategy head: {} of {} parameters train, fitted by L-BFGS on cached features; {} threads", trainable,
                      total, runtime_threads()));
  else if (r.o.strategy == "contrastive")
    p.log(fmt::format("strategy contrastive: the encoder's {} parameters learn cosine similarity 1 within a class and 0 across, on every pair of a "
                      "batch of {} (runs of up to {} per class); the head is fitted on the tuned embeddings {}; lr {:g}, {} epochs, {} threads",
                      trainable, r.o.batch_size, kContrastivePerClass, each_epoch ? "after each epoch" : "at the end", r.o.effective_lr(),
                      each_epoch ? fmt::format("up to {}", r.o.epochs) : std::to_string(r.o.epochs), runtime_threads()));
  else
    p.log(fmt::format("strategy {}: {} of {} parameters train; lr {:g}, batch {}, up to {} epochs, {} threads{}", r.o.strategy,
                      trainable, total, r.o.effective_lr(), r.o.batch_size, r.o.epochs, runtime_threads(), r.o.bf16 ? ", bf16" : ""));
  if (r.o.bf16 && r.device.is_cpu() && !cpu_has_native_bf16())
    p.log("warning: this CPU has no AVX512-BF16, so bf16 matmuls are emulated and slower than float32; drop --bf16 here");
}

// Every worker starts from rank 0's weights (the whole model state) and optimizer state.
void start_from_rank0(Run& r, FusedAdamW& opt, ProcessGroup& pg) {
  std::vector<torch::Tensor> state;
  for (auto& [name, t] : r.task->model().state()) state.push_back(t);
  kotsu::start_from_rank0(pg, std::move(state), opt);
}

// A run from its first epoch, into o.out (checked by the caller); `why`: the automatic choices' reasons.
TrainResult start_run(const TrainOptions& o, const TrainHooks& hooks, const ResolvedDefaults& why) {
  ProcessGroup* pg = hooks.workers;
  const bool lead = !pg || pg->rank() == 0;
  Progress p(hooks.quiet || !lead);
  Run r = prepare(o, {}, p, why);
  if (lead) {
    make_dirs(o.out);
    clean_run_dir(o.out);
  }
  auto opt = make_optimizer(r, pg != nullptr);
  describe(r, p);
  if (pg) p.log(fmt::format("data-parallel: {} workers x batch {} = {} examples per step", pg->size(), o.batch_size, pg->size() * o.batch_size));
  if (o.strategy != "head" && o.strategy != "contrastive" && o.init == "pretrained" && o.head_first && r.task->head_initialised())
    fit_head_first(r, p);  // every worker: the same seeded fit
  if (pg) start_from_rank0(r, *opt, *pg);
  TrainerState s;
  if (lead) write_run_json(r, s, "running");
  return recording_failure(o.out, lead, [&] { return run_training(r, s, hooks, std::move(opt)); });
}

}  // namespace

TrainResult train_classifier(const TrainOptions& given, const TrainHooks& hooks) {
  given.validate();
  ProcessGroup* pg = hooks.workers;
  const bool lead = !pg || pg->rank() == 0;
  TrainOptions o = given;
  const ResolvedDefaults why = resolve_defaults(o, false, pg != nullptr);
  if (pg && o.strategy == "head")
    throw Error("options", "--nproc", "strategy head fits the head once on cached features in one process; run it without data-parallel workers");
  if (pg && o.strategy == "contrastive")
    throw Error("options", "--nproc", "strategy contrastive scores every pair of a batch in one process; run it without data-parallel workers");
  runtime_init(o.threads);
  if (lead) {
    if (fs::exists(fs::path(o.out) / "trainer_state.json"))
      throw Error(o.out, "--out", "already holds a run; use --resume to continue it or choose another directory");
    // never write over a model that is not a kotsu run (the pretrained model itself, most likely)
    std::error_code ec;
    if (fs::exists(o.out) && fs::exists(o.model) && fs::equivalent(o.out, o.model, ec))
      throw Error(o.out, "--out", "is the --model directory; the run would overwrite the pretrained model");
    if (fs::exists(fs::path(o.out) / "model.safetensors") && !fs::exists(fs::path(o.out) / "run.json"))
      throw Error(o.out, "--out", "holds a model that is not a kotsu run; choose another directory");
  }
  return start_run(o, hooks, why);
}

TrainResult resume_classifier(const std::string& run_dir, const TrainHooks& hooks) {
  ProcessGroup* pg = hooks.workers;
  const bool lead = !pg || pg->rank() == 0;
  const RunFiles files = read_run_files(run_dir, pg);  // rank 0 reads; every worker receives
  const nlohmann::json& rj = files.run;
  TrainOptions o;
  o.merge_json(rj.at("options"), files.run_path);
  o.out = run_dir;
  o.validate();
  runtime_init(o.threads);
  Progress p(hooks.quiet || !lead);
  if (files.state.is_null()) {  // stopped before its first checkpoint was complete: nothing to continue from
    if (rj.value("status", "") == "finished") throw Error(files.state_path, "--resume", "missing from a finished run");
    p.log(restart_note(run_dir, rj));
    return start_run(o, hooks, chosen_in(rj));
  }
  TrainerState s = TrainerState::from_json(files.state, files.state_path);
  if (rj.value("status", "") == "finished") {
    p.log("run " + run_dir + " already finished; nothing to resume");
    return result_of(s, run_dir);
  }
  if (lead) clean_run_dir(run_dir);
  if (pg && o.strategy == "head") throw Error(run_dir, "--nproc", "strategy head runs in one process; resume it without data-parallel workers");
  Run r = prepare(o, rj.at("labels").get<std::vector<std::string>>(), p, chosen_in(rj));
  auto opt = make_optimizer(r, pg != nullptr);  // first: strategy lora adds the adapter tensors the checkpoint holds
  if (lead) {
    const std::string ck = (fs::path(run_dir) / s.checkpoint).string();
    {
      torch::NoGradGuard ng;
      SafetensorsReader reader(ck + "/model.safetensors");
      for (auto& [name, t] : r.task->model().state()) {
        if (!reader.find(name)) throw Error(reader.path(), name, "tensor missing from the checkpoint");
        t.copy_(reader.tensor(name));
      }
    }
    opt->load_file(ck + "/optimizer.pt");
  }
  if (pg) start_from_rank0(r, *opt, *pg);
  p.log(fmt::format("resuming {} after epoch {} (step {}){}", run_dir, s.epoch, s.global_step,
                    pg ? fmt::format(" with {} data-parallel workers", pg->size()) : ""));
  return recording_failure(o.out, lead, [&] { return run_training(r, s, hooks, std::move(opt)); });
}

}  // namespace kotsu
