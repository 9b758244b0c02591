#include "kotsu/io/lm_config.hpp"

#include "kotsu/core/error.hpp"
#include "kotsu/io/config_fields.hpp"
#include "kotsu/io/json_file.hpp"

namespace kotsu {

namespace {

int64_t token_id(const nlohmann::json& j, const char* key, const std::string& path) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return -1;
  if (it->is_array() && !it->empty()) return (*it)[0].is_number_integer() ? (*it)[0].get<int64_t>() : -1;  // several eos ids: the first
  if (!it->is_number_integer()) throw Error(path, key, "must be an integer");
  return it->get<int64_t>();
}

}  // namespace

namespace {

void read_gpt2(CausalLmConfig& c, const nlohmann::json& j, const std::string& path) {
  c.vocab_size = config_int(j, "vocab_size", path, 1, 1 << 22);
  c.hidden_size = config_int(j, "n_embd", path, 1, 1 << 16);
  c.num_layers = config_int(j, "n_layer", path, 1, 1024);
  c.num_heads = config_int(j, "n_head", path, 1, 1024);
  c.num_kv_heads = c.num_heads;
  c.max_positions = config_int(j, "n_positions", path, 1, 1 << 20);
  c.intermediate_size = j.contains("n_inner") && !j["n_inner"].is_null() ? config_int(j, "n_inner", path, 1, 1 << 18) : 4 * c.hidden_size;
  c.activation = j.value("activation_function", "gelu_new");
  c.norm_eps = config_number(j, "layer_norm_epsilon", 1e-5, path);
  c.embd_dropout = config_number(j, "embd_pdrop", 0.1, path);
  c.attn_dropout = config_number(j, "attn_pdrop", 0.1, path);
  c.resid_dropout = config_number(j, "resid_pdrop", 0.1, path);
  c.tie_word_embeddings = j.value("tie_word_embeddings", true);
  if (j.value("scale_attn_by_inverse_layer_idx", false) || j.value("reorder_and_upcast_attn", false))
    throw Error(path, "scale_attn_by_inverse_layer_idx", "is not supported (GPT-2 checkpoints leave it false)");
  if (!j.value("scale_attn_weights", true)) throw Error(path, "scale_attn_weights", "false is not supported");
}

void read_llama(CausalLmConfig& c, const nlohmann::json& j, const std::string& path) {
  c.vocab_size = config_int(j, "vocab_size", path, 1, 1 << 22);
  c.hidden_size = config_int(j, "hidden_size", path, 1, 1 << 16);
  c.num_layers = config_int(j, "num_hidden_layers", path, 1, 1024);
  c.num_heads = config_int(j, "num_attention_heads", path, 1, 1024);
  c.num_kv_heads = j.contains("num_key_value_heads") && !j["num_key_value_heads"].is_null() ? config_int(j, "num_key_value_heads", path, 1, 1024) : c.num_heads;
  if (c.num_heads % c.num_kv_heads != 0) throw Error(path, "num_key_value_heads", "does not divide num_attention_heads");
  if (j.contains("head_dim") && !j["head_dim"].is_null()) c.head_size = config_int(j, "head_dim", path, 1, 4096);
  c.max_positions = config_int(j, "max_position_embeddings", path, 1, 1 << 24);
  c.intermediate_size = config_int(j, "intermediate_size", path, 1, 1 << 18);
  c.activation = j.value("hidden_act", "silu");
  c.norm_eps = config_number(j, "rms_norm_eps", 1e-6, path);
  c.embd_dropout = c.resid_dropout = 0.0;
  c.attn_dropout = config_number(j, "attention_dropout", 0.0, path);
  c.tie_word_embeddings = j.value("tie_word_embeddings", false);
  c.rope_theta = config_number(j, "rope_theta", 10000.0, path);
  c.attention_bias = c.model_type == "qwen2" || j.value("attention_bias", false);
  c.mlp_bias = j.value("mlp_bias", false);
  if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) {
    const auto& r = j["rope_scaling"];
    c.rope_type = r.value("rope_type", r.value("type", std::string("default")));
    const std::string where = path + " rope_scaling";
    c.rope_factor = config_number(r, "factor", 1.0, where);
    c.rope_low_freq_factor = config_number(r, "low_freq_factor", 1.0, where);
    c.rope_high_freq_factor = config_number(r, "high_freq_factor", 4.0, where);
    if (r.contains("original_max_position_embeddings")) c.rope_original_max_positions = config_int(r, "original_max_position_embeddings", where, 1, 1 << 24);
    if (c.rope_type != "default" && c.rope_type != "linear" && c.rope_type != "llama3")
      throw Error(path, "rope_scaling.rope_type", "'" + c.rope_type + "' is not supported (default, linear, llama3)");
    if (c.rope_factor <= 0) throw Error(path, "rope_scaling.factor", "must be > 0");
  }
  if (c.activation != "silu") throw Error(path, "hidden_act", "'" + c.activation + "' is not supported (silu)");
}

}  // namespace

CausalLmConfig CausalLmConfig::from_json(const nlohmann::json& j, const std::string& path) {
  if (!j.is_object()) throw Error(path, "", "config is not a JSON object");
  CausalLmConfig c;
  c.raw = j;
  c.model_type = j.value("model_type", "gpt2");
  try {
    if (c.model_type == "gpt2") read_gpt2(c, j, path);
    else if (c.is_llama_family()) read_llama(c, j, path);
    else throw Error(path, "model_type", "'" + c.model_type + "' is not a causal LM kotsu builds (gpt2, llama, mistral, qwen2)");
  } catch (const nlohmann::json::exception& e) {
    throw Error(path, "", std::string("a field has the wrong type: ") + e.what());
  }
  c.initializer_range = config_number(j, "initializer_range", 0.02, path);
  c.bos_token_id = token_id(j, "bos_token_id", path);
  c.eos_token_id = token_id(j, "eos_token_id", path);
  if (c.head_size == 0 && c.hidden_size % c.num_heads != 0)
    throw Error(path, c.model_type == "gpt2" ? "n_head" : "num_attention_heads", "does not divide the hidden size " + std::to_string(c.hidden_size));
  return c;
}

CausalLmConfig CausalLmConfig::load(const std::string& path) { return from_json(read_json(path), path); }

nlohmann::json CausalLmConfig::to_json() const {
  nlohmann::json j = raw.is_object() ? raw : nlohmann::json::object();
  j["model_type"] = model_type;
  j["vocab_size"] = vocab_size;
  j["tie_word_embeddings"] = tie_word_embeddings;
  if (bos_token_id >= 0) j["bos_token_id"] = bos_token_id;
  if (eos_token_id >= 0) j["eos_token_id"] = eos_token_id;
  if (model_type != "gpt2") {  // the Llama family's names; rope_scaling and the rest stay as read
    j.update({{"hidden_size", hidden_size}, {"num_hidden_layers", num_layers}, {"num_attention_heads", num_heads},
              {"num_key_value_heads", num_kv_heads}, {"intermediate_size", intermediate_size}, {"max_position_embeddings", max_positions},
              {"rms_norm_eps", norm_eps}, {"rope_theta", rope_theta}, {"hidden_act", activation}});
    return j;
  }
  j.update({{"n_embd", hidden_size}, {"n_layer", num_layers}, {"n_head", num_heads}, {"n_positions", max_positions},
            {"n_inner", intermediate_size == 4 * hidden_size ? nlohmann::json(nullptr) : nlohmann::json(intermediate_size)},
            {"activation_function", activation}, {"layer_norm_epsilon", norm_eps}});
  return j;
}

}  // namespace kotsu
