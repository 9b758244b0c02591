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
