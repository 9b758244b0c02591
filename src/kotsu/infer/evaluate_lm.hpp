// kotsu/infer/evaluate_lm: perplexity of a causal LM on a text, the held-out measure of language-model
// fine-tuning. Long texts are read in windows of max_len tokens moving by stride (Hugging Face's sliding-
// window recipe): each window scores only the tokens not scored by the window before, with everything
// before them in the window as context, so with stride < max_len every scored token has at least
// max_len - stride tokens of context (with stride == max_len the windows do not overlap and each window's
// first token, which has no context, is not scored). Unlike the recipe's weighting of per-window mean
// losses, the negative log-likelihood is summed token by token over the tokens scored.
// requires: at least two tokens; 2 <= max_len <= the model's positions; 1 <= stride <= max_len.
#pragma once
#include <cstdint>
#include <vector>

#include "kotsu/models/causal_lm.hpp"

namespace kotsu {

struct Perplexity {
  double nll = 0;       // summed negative log-likelihood (nats) of the scored tokens
  int64_t tokens = 0;   // tokens scored (all but the first)
  int64_t windows = 0;
  double mean_nll() const { return tokens ? nll / static_cast<double>(tokens) : 0.0; }
  double perplexity() const;
};

Perplexity evaluate_perplexity(CausalLm& model, const std::vector<int64_t>& ids, int64_t max_len, int64_t stride);

}  // namespace kotsu
