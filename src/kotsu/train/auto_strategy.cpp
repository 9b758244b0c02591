#include "kotsu/train/auto_strategy.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <optional>
#include <vector>

#include "kotsu/data/text_dataset.hpp"
#include "kotsu/models/image_model.hpp"

namespace kotsu {

namespace {

// The examples per class of `data` (its `rows`).
std::map<std::string, size_t> class_counts(const TrainOptions& o) {
  TextDataset d = load_text_dataset(o.data, o.columns);
  if (!o.rows.empty()) d = subset(d, o.rows);
  std::map<std::string, size_t> n;
  for (const auto& y : d.labels) ++n[y];
  return n;
}

size_t total(const std::map<std::string, size_t>& counts) {
  size_t n = 0;
  for (const auto& [label, c] : counts) n += c;
  return n;
}

using Counts = std::map<std::string, size_t>;

// choose_strategy on the class counts of a text classifier's data, read once when first needed.
StrategyChoice choose(const TrainOptions& o, bool causal_lm, bool distributed, std::optional<Counts>& counts_of_data) {
  if (causal_lm) return {"full", "a causal LM: full fine-tuning (--strategy lora trains adapters instead)"};
  if (o.init == "random") return {"full", "--init random: nothing pre-trained to keep, every weight trains"};
  if (distributed) return {"full", "data-parallel workers: full fine-tuning (head and contrastive run in one process)"};
  if (is_image_model_dir(o.model)) return {"full", "pictures: full fine-tuning of the backbone"};
  if (!counts_of_data) counts_of_data = class_counts(o);
  const Counts& counts = *counts_of_data;
  const size_t n = total(counts), classes = counts.size();
  std::vector<size_t> per;
  for (const auto& [label, c] : counts) per.push_back(c);
  std::sort(per.begin(), per.end());
  const double median = per.empty() ? 0.0 : per.size() % 2 ? static_cast<double>(per[per.size() / 2])
                                                            : (static_cast<double>(per[per.size() / 2 - 1]) + static_cast<double>(per[per.size() / 2])) / 2;
  if (n <= kFewShotExamples && median < kMinPerClassForPairs)
    return {"head", fmt::format("few-shot with {:g} examples per class (median of {}, < {}): too few pairs of a class to tune the embedding "
                                "on; the head on the frozen embedding measured as good at a tenth of the cost (bench/vs_anchors)",
                                median, classes, kMinPerClassForPairs)};
  if (n <= kFewShotExamples)
    return {"contrastive", fmt::format("few-shot: {} examples of {} classes (<= {}), where tuning the sentence embedding on pairs "
                                       "measured best (bench/vs_anchors)",
                                       n, classes, kFewShotExamples)};
  return {"full", fmt::format("{} examples of {} classes (> {}): enough for full fine-tuning, which measured best there (bench/vs_anchors)",
                              n, classes, kFewShotExamples)};
}

}  // namespace

int64_t contrastive_epochs(size_t examples, int64_t examples_per_step) {
  const auto per = static_cast<size_t>(std::max<int64_t>(1, examples_per_step));
  const auto steps = static_cast<int64_t>(std::max<size_t>(1, (examples + per - 1) / per));
  return std::clamp<int64_t>((kContrastiveMinSteps + steps - 1) / steps, 5, 20);
}

StrategyChoice choose_strategy(const TrainOptions& o, bool causal_lm, bool distributed) {
  std::optional<Counts> counts;
  return choose(o, causal_lm, distributed, counts);
}

ResolvedDefaults resolve_defaults(TrainOptions& o, bool causal_lm, bool distributed) {
  ResolvedDefaults why;
  std::optional<Counts> counts;  // the data's, read at most once
  if (o.strategy == "auto") {
    StrategyChoice c = choose(o, causal_lm, distributed, counts);
    o.strategy = c.strategy;
    why.strategy_why = std::move(c.why);
  }
  if (o.epochs <= 0 && o.strategy == "contrastive" && !causal_lm) {
    if (!counts) counts = class_counts(o);
    // what trains: all of it, unless a share is held out (--val-fraction, --target-recall)
    const size_t n = total(*counts);
    const auto trained = o.holds_out() ? n - static_cast<size_t>(static_cast<double>(n) * o.holdout_fraction()) : n;
    o.epochs = contrastive_epochs(trained, o.batch_size * std::max<int64_t>(1, o.grad_accum));
  }
  o.epochs = o.effective_epochs();
  if (o.balance == "auto") {
    o.balance = "none";
    if (!causal_lm && !is_image_model_dir(o.model)) {
      if (!counts) counts = class_counts(o);
      auto lo = counts->begin(), hi = counts->begin();
      for (auto it = counts->begin(); it != counts->end(); ++it) {
        if (it->second < lo->second) lo = it;
        if (it->second > hi->second) hi = it;
      }
      if (counts->size() >= 2 && static_cast<double>(hi->second) >= kImbalanceRatio * static_cast<double>(lo->second)) {
        o.balance = kAutoBalance;
        why.balance_why = fmt::format("'{}' has {} examples, '{}' {} (at least {:g}:1): the loss weighs each class as much as the others "
                                      "(measured: bench/vs_anchors sst2imb-200)",
                                      hi->first, hi->second, lo->first, lo->second, kImbalanceRatio);
      }
    }
  }
  return why;
}

}  // namespace kotsu
