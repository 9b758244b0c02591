#include "kotsu/train/auto_strategy.hpp"

#include <fmt/format.h>

#include <set>

#include "kotsu/data/text_dataset.hpp"
#include "kotsu/models/image_model.hpp"

namespace kotsu {

namespace {

// The examples of `data` (its `rows`), and the number of classes among them.
std::pair<size_t, size_t> count_examples(const TrainOptions& o) {
  TextDataset d = load_text_dataset(o.data, o.columns);
  if (!o.rows.empty()) d = subset(d, o.rows);
  std::set<std::string> classes(d.labels.begin(), d.labels.end());
  return {d.size(), classes.size()};
}

}  // namespace

StrategyChoice choose_strategy(const TrainOptions& o, bool causal_lm, bool distributed) {
  if (causal_lm) return {"full", "a causal LM: full fine-tuning (--strategy lora trains adapters instead)"};
  if (o.init == "random") return {"full", "--init random: nothing pre-trained to keep, every weight trains"};
  if (distributed) return {"full", "data-parallel workers: full fine-tuning (head and contrastive run in one process)"};
  if (is_image_model_dir(o.model)) return {"full", "pictures: full fine-tuning of the backbone"};
  const auto [n, classes] = count_examples(o);
  if (n <= kFewShotExamples)
    return {"contrastive", fmt::format("few-shot: {} examples of {} classes (<= {}), where tuning the sentence embedding on pairs "
                                       "measured best (bench/vs_anchors)",
                                       n, classes, kFewShotExamples)};
  return {"full", fmt::format("{} examples of {} classes (> {}): enough for full fine-tuning, which measured best there (bench/vs_anchors)",
                              n, classes, kFewShotExamples)};
}

std::string resolve_defaults(TrainOptions& o, bool causal_lm, bool distributed) {
  std::string why;
  if (o.strategy == "auto") {
    StrategyChoice c = choose_strategy(o, causal_lm, distributed);
    o.strategy = c.strategy;
    why = std::move(c.why);
  }
  o.epochs = o.effective_epochs();
  return why;
}

}  // namespace kotsu
