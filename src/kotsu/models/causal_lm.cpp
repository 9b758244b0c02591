#include "kotsu/models/causal_lm.hpp"

#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <set>

#include "kotsu/core/error.hpp"
#include "kotsu/io/json_file.hpp"
#include "kotsu/io/safetensors.hpp"
#include "kotsu/models/gpt2.hpp"

namespace kotsu {

namespace fs = std::filesystem;

std::vector<std::pair<std::string, torch::Tensor>> CausalLm::state() {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : named_parameters(true)) out.emplace_back(p.key(), p.value());
  for (const auto& b : named_buffers(true)) out.emplace_back(b.key(), b.value());
  return out;
}

std::shared_ptr<CausalLm> make_causal_lm(const CausalLmConfig& config) {
  if (config.model_type == "gpt2") return std::make_shared<Gpt2>(config);
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
  // GPT2Model checkpoints (the hub's gpt2) have no "transformer." prefix; GPT2LMHeadModel ones do
  const std::string prefix = "transformer.";
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
