// kotsu/infer/prompt_eval: a causal LM as a classifier by prompting (practice 7), to compare prompts with
// each other and with fine-tuning on the same labelled file. Each example is written into a template
// ("Review: {text}\nSentiment:"), after k demonstrations (k-shot: examples of a shots file, drawn
// class-balanced with the seed, each rendered as template + verbalizer + separator); every label's
// verbalizer (its word, " positive" by default: a space and the label) is scored by its log-likelihood
// after the prompt (summed over its tokens, or the mean per token), and the best-scoring label is the
// prediction. The prompt runs once per example; each verbalizer continues it from the key/value cache.
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kotsu/data/text_dataset.hpp"

namespace kotsu {

struct PromptEvalOptions {
  std::string model;                             // a causal LM or LoRA adapter directory
  std::string data;                              // labelled file to score (text and label columns)
  TextColumns columns;
  std::vector<std::string> templates{"{text}"};  // each holds {text}; compared side by side
  std::vector<int64_t> shots{0};                 // demonstrations before each example; compared side by side
  std::string shots_data;                        // where demonstrations come from (required when shots > 0)
  std::map<std::string, std::string> verbalizers;  // label -> continuation text; default " " + label
  std::string separator = "\n\n";                // between demonstrations and before the example
  std::string chat_template;                     // optional: the prompt as a user message (text/chat_format)
  bool mean = false;                             // score the mean log-probability per token instead of the sum
  uint64_t seed = 0;
  int threads = 0;
};

// One result per (template, shots): accuracy, macro-F1 and the rest of `kotsu eval`'s metrics, the
// confusion matrix, and every example's label scores.
nlohmann::json prompt_eval(const PromptEvalOptions& o);

}  // namespace kotsu
