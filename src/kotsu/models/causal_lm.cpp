#include "kotsu/models/causal_lm.hpp"

#include <torch/torch.h>

#include <filesystem>
#include <limits>
#include <map>
#include <set>

#include "kotsu/core/error.hpp"
#include "kotsu/io/json_file.hpp"
#include "kotsu/io/safetensors.hpp"
#include "kotsu/models/gpt2.hpp"
#include "kotsu/models/llama.hpp"
#include "kotsu/models/lora.hpp"

namespace kotsu {

namespace fs = std::filesystem;

bool is_causal_lm_dir(const std::string& dir) {
  if (is_peft_adapter_dir(dir)) {  // a LoRA run of a causal LM (a classifier's LoRA run holds a merged model)
    try {
      return read_json((fs::path(dir) / "adapter_config.json").string()).value("task_type", "") == "CAUSAL_LM";
    } catch (const Error&) {
      return false;
    }
  }
  const fs::path c = fs::path(dir) / "config.json";
  if (!fs::exists(c)) return false;
  try {
    const auto j = read_json(c.string());
    const std::string t = j.value("model_type", "");
    return CausalLmConfig::is_causal_lm_type(t);
  } catch (const Error&) {
    return false;
  }
}

std::vector<std::pair<std::string, torch::Tensor>> CausalLm::state() {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : named_parameters(true)) out.emplace_back(p.key(), p.value());
  for (const auto& b : named_buffers(true)) out.emplace_back(b.key(), b.value());
  return out;
}

torch::Tensor causal_allowed(int64_t past, int64_t T, const torch::Tensor& mask, torch::Device device) {
  auto opts = torch::TensorOptions().device(device).dtype(torch::kLong);
  auto allowed = (torch::arange(past + T, opts).view({1, past + T}) <= torch::arange(past, past + T, opts).view({T, 1})).view({1, 1, T, past + T});
  if (mask.defined() && mask.dim() == 3) allowed = allowed.logical_and(mask.to(device).to(torch::kBool).view({mask.size(0), 1, T, past + T}));
  else if (mask.defined()) allowed = allowed.logical_and(mask.to(device).to(torch::kBool).view({mask.size(0), 1, 1, past + T}));
  return allowed;
}

double lowest_value(torch::ScalarType t) {
  return t == torch::kBFloat16 ? -3.3895313892515355e38
         : t == torch::kHalf   ? -65504.0
         : t == torch::kDouble ? std::numeric_limits<double>::lowest()
                               : std::numeric_limits<float>::lowest();
}

std::vector<ParamGroup> decoder_param_groups(torch::nn::Module& model, int64_t layers, const std::string& block_prefix,
                                             const std::vector<std::string>& embedding_prefixes) {
  std::vector<ParamGroup> groups{{"embeddings", {}}};
  for (int64_t i = 0; i < layers; ++i) groups.push_back({"layer." + std::to_string(i), {}});
  groups.push_back({"head", {}});
  for (const auto& p : model.named_parameters(true)) {
    const std::string& n = p.key();
    if (n.rfind(block_prefix, 0) == 0) {
      const int64_t i = std::stoll(n.substr(block_prefix.size(), n.find('.', block_prefix.size()) - block_prefix.size()));
      groups[static_cast<size_t>(i + 1)].params.emplace_back(n, p.value());
      continue;
    }
    bool embedding = false;
    for (const auto& e : embedding_prefixes) embedding = embedding || n.rfind(e, 0) == 0;
    (embedding ? groups.front() : groups.back()).params.emplace_back(n, p.value());
  }
  return groups;
}

std::shared_ptr<CausalLm> make_causal_lm(const CausalLmConfig& config) {
  if (config.model_type == "gpt2") return std::make_shared<Gpt2>(config);
  if (config.is_llama_family()) return std::make_shared<Llama>(config);
  throw Error("config.json", "model_type", "'" + config.model_type + "' is not a causal LM kotsu builds");
}

namespace {

// Every tensor of the directory: model.safetensors, or the shards model.safetensors.index.json lists.
std::map<std::string, torch::Tensor> read_weights(const std::string& dir, std::string& source) {
  const fs::path single = fs::path(dir) / "model.safetensors", index = fs::path(dir) / "model.safetensors.index.json";
  if (fs::exists(single)) {
    source = single.string();
    return load_safetensors(source);
  }
  if (!fs::exists(index)) throw Error(dir, "model.safetensors", "missing (nor model.safetensors.index.json)");
  source = index.string();
  const nlohmann::json j = read_json(source);
  if (!j.contains("weight_map") || !j["weight_map"].is_object()) throw Error(source, "weight_map", "missing or not an object");
  std::set<std::string> shards;
  for (const auto& [name, file] : j["weight_map"].items()) {
    if (!file.is_string()) throw Error(source, "weight_map." + name, "must be a file name");
    const std::string f = file.get<std::string>();
    if (f.find('/') != std::string::npos || f.find("..") != std::string::npos) throw Error(source, "weight_map." + name, "'" + f + "' is not a file in the directory");
    shards.insert(f);
  }
  std::map<std::string, torch::Tensor> all;
  for (const auto& f : shards)
    for (auto& [name, t] : load_safetensors((fs::path(dir) / f).string())) all.emplace(name, std::move(t));
  for (const auto& [name, file] : j["weight_map"].items())
    if (!all.count(name)) throw Error(source, "weight_map." + name, "not in " + file.get<std::string>());
  return all;
}

}  // namespace

CausalLmModel load_causal_lm(const std::string& dir, torch::ScalarType dtype) {
  if (!fs::is_directory(dir)) throw Error(dir, "", "model directory not found");
  CausalLmModel m;
  m.config = CausalLmConfig::load((fs::path(dir) / "config.json").string());
  m.model = make_causal_lm(m.config);
  m.model->to(dtype);
  std::string source;
  std::map<std::string, torch::Tensor> tensors = read_weights(dir, source);
  // base-model checkpoints (the hub's gpt2, LlamaModel) lack the LM's "transformer." / "model." prefix
  const std::string prefix = m.config.model_type == "gpt2" ? "transformer." : "model.";
  std::set<std::string> used;
  torch::NoGradGuard ng;
  for (auto& [name, param] : m.model->state()) {
    auto it = tensors.find(name);
    if (it == tensors.end() && name.rfind(prefix, 0) == 0) it = tensors.find(name.substr(prefix.size()));
    if (it == tensors.end()) throw Error(source, name, "tensor missing from the checkpoint");
    if (it->second.sizes() != param.sizes())
      throw Error(source, name, "shape " + c10::str(it->second.sizes()) + " does not match the config's " + c10::str(param.sizes()));
    param.copy_(it->second);
    used.insert(it->first);
    ++m.load_report.loaded;
  }
  for (const auto& [name, t] : tensors)
    if (!used.count(name) && !(m.config.tie_word_embeddings && name == "lm_head.weight")) m.load_report.unexpected.push_back(name);
  return m;
}

}  // namespace kotsu
