// kotsu/models/generate: text continuation with a causal LM, one token at a time. With the key/value cache
// (the default) each step feeds only the new token; without it each step re-reads the whole sequence
// (the reference the cache is tested against: both give the same tokens). Logits are processed in Hugging
// Face's order: repetition penalty (over prompt and generated tokens; a positive logit divided by it, a
// negative one multiplied), temperature, top-k, top-p (nucleus: the smallest set of most likely tokens
// whose probability reaches p, at least one kept); temperature 0 is greedy (the first maximum).
// Sampling draws from a seeded std::mt19937_64, so the same seed gives the same text.
#pragma once
#include <cstdint>
#include <functional>
#include <random>
#include <vector>

#include "kotsu/models/causal_lm.hpp"

namespace kotsu {

struct GenerateOptions {
  int64_t max_new_tokens = 64;
  double temperature = 0.0;  // 0: greedy
  int64_t top_k = 0;         // 0: off
  double top_p = 1.0;        // 1: off
  double repetition_penalty = 1.0;
  std::vector<int64_t> stop_ids;  // generation ends after any of these (EOS), which is kept in the output
  uint64_t seed = 0;
  bool use_cache = true;
  // Called with each new token and the tokens so far (generated only); true stops (stop strings).
  std::function<bool(int64_t token, const std::vector<int64_t>& generated)> on_token;
};

// The generated tokens (without the prompt). requires: a non-empty prompt.
std::vector<int64_t> generate(CausalLm& model, const std::vector<int64_t>& prompt, const GenerateOptions& o);

// Several prompts at once (the server's concurrent completions): left-padded into one batch with explicit
// positions, then one forward pass per step for every row still generating. A row that stops (a stop id,
// its on_token, its max_new_tokens, the model's max_positions) leaves the batch: its key/value cache rows
// are dropped, and so are cache columns that only padding of the rows gone had filled. Each row follows
// its own options (sampling from its own seeded generator, use_cache ignored: always cached) and gets the
// tokens generate() gives its prompt alone, up to float rounding in the padded batch (greedy: tested equal).
struct GenerateJob {
  std::vector<int64_t> prompt;
  GenerateOptions options;
};
std::vector<std::vector<int64_t>> generate_batch(CausalLm& model, const std::vector<GenerateJob>& jobs);

// The next token from one row of logits [vocab] after the processing above; `context` is every token so far.
int64_t next_token(torch::Tensor logits, const std::vector<int64_t>& context, const GenerateOptions& o, std::mt19937_64& rng);

}  // namespace kotsu
