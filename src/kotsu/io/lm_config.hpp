// kotsu/io/lm_config: the config.json of a Hugging Face causal language model, in one struct for every
// decoder family kotsu builds: gpt2, and the Llama family (llama, mistral, qwen2: RMSNorm, RoPE with
// rope_theta and rope_scaling linear or llama3, grouped-query attention, SwiGLU). GPT-2 names its fields
// n_embd, n_layer, n_head, n_inner, n_positions, activation_function, layer_norm_epsilon; they are read
// into the common fields and written back under their own names (raw keeps every other key as it was).
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
  int64_t num_kv_heads = 0;       // grouped-query attention: heads sharing one key/value head (= num_heads: none)
  int64_t head_size = 0;          // Llama family: head_dim when given, else hidden / heads
  int64_t intermediate_size = 0;  // GPT-2: n_inner, null -> 4 * hidden
  int64_t max_positions = 0;
  std::string activation = "gelu_new";
  double norm_eps = 1e-5;
  double embd_dropout = 0.1, attn_dropout = 0.1, resid_dropout = 0.1;
  bool tie_word_embeddings = true;
  int64_t bos_token_id = -1, eos_token_id = -1;  // -1: none
  // Llama family
  double rope_theta = 10000.0;
  std::string rope_type = "default";  // default | linear | llama3
  double rope_factor = 1.0, rope_low_freq_factor = 1.0, rope_high_freq_factor = 4.0;
  int64_t rope_original_max_positions = 8192;
  bool attention_bias = false;  // q/k/v projections with biases (qwen2: always)
  bool mlp_bias = false;
  double initializer_range = 0.02;
  nlohmann::json raw;

  int64_t head_dim() const { return head_size > 0 ? head_size : hidden_size / num_heads; }
  bool is_llama_family() const { return is_llama_family_type(model_type); }
  // The one list of the causal-LM model types kotsu builds: gpt2 and the Llama family.
  static bool is_llama_family_type(const std::string& t) { return t == "llama" || t == "mistral" || t == "qwen2"; }
  static bool is_causal_lm_type(const std::string& t) { return t == "gpt2" || is_llama_family_type(t); }
  static CausalLmConfig from_json(const nlohmann::json& j, const std::string& path);
  static CausalLmConfig load(const std::string& path);
  nlohmann::json to_json() const;
};

}  // namespace kotsu
