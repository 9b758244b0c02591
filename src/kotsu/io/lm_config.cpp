#include "kotsu/io/lm_config.hpp"

#include <filesystem>

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

CausalLmConfig CausalLmConfig::from_json(const nlohmann::json& j, const std::string& path) {
  if (!j.is_object()) throw Error(path, "", "config is not a JSON object");
  CausalLmConfig c;
  c.raw = j;
  c.model_type = j.value("model_type", "gpt2");
  if (c.model_type != "gpt2") throw Error(path, "model_type", "'" + c.model_type + "' is not a causal LM kotsu builds (gpt2)");
  c.vocab_size = config_int(j, "vocab_size", path, 1, 1 << 22);
  c.hidden_size = config_int(j, "n_embd", path, 1, 1 << 16);
  c.num_layers = config_int(j, "n_layer", path, 1, 1024);
  c.num_heads = config_int(j, "n_head", path, 1, 1024);
  c.max_positions = config_int(j, "n_positions", path, 1, 1 << 20);
  c.intermediate_size = j.contains("n_inner") && !j["n_inner"].is_null() ? config_int(j, "n_inner", path, 1, 1 << 18) : 4 * c.hidden_size;
  c.activation = j.value("activation_function", "gelu_new");
  c.norm_eps = config_number(j, "layer_norm_epsilon", 1e-5, path);
  c.embd_dropout = config_number(j, "embd_pdrop", 0.1, path);
  c.attn_dropout = config_number(j, "attn_pdrop", 0.1, path);
  c.resid_dropout = config_number(j, "resid_pdrop", 0.1, path);
  c.tie_word_embeddings = j.value("tie_word_embeddings", true);
  c.initializer_range = config_number(j, "initializer_range", 0.02, path);
  c.bos_token_id = token_id(j, "bos_token_id", path);
  c.eos_token_id = token_id(j, "eos_token_id", path);
  if (c.hidden_size % c.num_heads != 0) throw Error(path, "n_head", "does not divide n_embd " + std::to_string(c.hidden_size));
  if (j.value("scale_attn_by_inverse_layer_idx", false) || j.value("reorder_and_upcast_attn", false))
    throw Error(path, "scale_attn_by_inverse_layer_idx", "is not supported (GPT-2 checkpoints leave it false)");
  if (j.contains("scale_attn_weights") && !j["scale_attn_weights"].get<bool>()) throw Error(path, "scale_attn_weights", "false is not supported");
  return c;
}

CausalLmConfig CausalLmConfig::load(const std::string& path) { return from_json(read_json(path), path); }

nlohmann::json CausalLmConfig::to_json() const {
  nlohmann::json j = raw.is_object() ? raw : nlohmann::json::object();
  j["model_type"] = model_type;
  j["vocab_size"] = vocab_size;
  j["n_embd"] = hidden_size;
  j["n_layer"] = num_layers;
  j["n_head"] = num_heads;
  j["n_positions"] = max_positions;
  j["n_inner"] = intermediate_size == 4 * hidden_size ? nlohmann::json(nullptr) : nlohmann::json(intermediate_size);
  j["activation_function"] = activation;
  j["layer_norm_epsilon"] = norm_eps;
  j["tie_word_embeddings"] = tie_word_embeddings;
  if (bos_token_id >= 0) j["bos_token_id"] = bos_token_id;
  if (eos_token_id >= 0) j["eos_token_id"] = eos_token_id;
  return j;
}

bool is_causal_lm_dir(const std::string& dir) {
  const auto path = std::filesystem::path(dir) / "config.json";
  if (!std::filesystem::exists(path)) return false;
  const nlohmann::json j = read_json(path.string());
  return j.is_object() && j.value("model_type", std::string()) == "gpt2";
}

}  // namespace kotsu
