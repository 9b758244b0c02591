// kotsu/io/lm_config: the config.json of a Hugging Face causal language model, in one struct for every
// decoder family kotsu builds. GPT-2 names its fields n_embd, n_layer, n_head, n_inner, n_positions,
// activation_function, layer_norm_epsilon; they are read into the common fields and written back under
// their own names (raw keeps every other key as it was).
// requires: a JSON object with model_type (default gpt2) and the family's required sizes.
// ensures:  sizes are positive and consistent (hidden divisible by heads), or kotsu::Error names the field.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace kotsu {

struct CausalLmConfig {
  std::string model_type = "gpt2";
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t intermediate_size = 0;  // GPT-2: n_inner, null -> 4 * hidden
  int64_t max_positions = 0;
  std::string activation = "gelu_new";
  double norm_eps = 1e-5;
  double embd_dropout = 0.1, attn_dropout = 0.1, resid_dropout = 0.1;
  bool tie_word_embeddings = true;
  int64_t bos_token_id = -1, eos_token_id = -1;  // -1: none
  double initializer_range = 0.02;
  nlohmann::json raw;

  int64_t head_dim() const { return hidden_size / num_heads; }
  static CausalLmConfig from_json(const nlohmann::json& j, const std::string& path);
  static CausalLmConfig load(const std::string& path);
  nlohmann::json to_json() const;
};

// Whether config.json in `dir` describes a causal LM kotsu builds (model_type gpt2).
bool is_causal_lm_dir(const std::string& dir);

}  // namespace kotsu
