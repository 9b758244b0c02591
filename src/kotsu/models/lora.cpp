#include "kotsu/models/lora.hpp"

#include <fmt/format.h>
#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <regex>
#include <set>

#include "kotsu/core/error.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/io/json_file.hpp"
#include "kotsu/io/safetensors.hpp"

namespace kotsu {

namespace fs = std::filesystem;

namespace {

const std::string kPrefix = "base_model.model.";

bool ends_with_part(const std::string& name, const std::string& t) {
  return name == t || (name.size() > t.size() && name.compare(name.size() - t.size(), t.size(), t) == 0 && name[name.size() - t.size() - 1] == '.');
}

bool matches(const std::string& name, const LoraOptions& o) {
  const auto& t = o.target_modules;
  if (t.is_string()) {
    const std::string s = t.get<std::string>();
    if (s == "all-linear") {
      for (const auto& h : o.head_modules)
        if (ends_with_part(name, h) || name.rfind(h + ".", 0) == 0) return false;
      return true;
    }
    try {
      return std::regex_match(name, std::regex(s));
    } catch (const std::regex_error& e) {
      throw Error("lora", "target_modules", "'" + s + "' is not a regular expression: " + e.what());
    }
  }
  for (const auto& x : t)
    if (ends_with_part(name, x.get<std::string>())) return true;
  return false;
}

bool saved_module(const std::string& param, const LoraOptions& o) {
  for (const auto& m : o.modules_to_save)
    if (param.rfind(m + ".", 0) == 0 || param.find("." + m + ".") != std::string::npos) return true;
  return false;
}

std::vector<std::pair<std::string, DenseImpl*>> dense_layers(torch::nn::Module& model) {
  std::vector<std::pair<std::string, DenseImpl*>> out;
  for (const auto& m : model.named_modules("", false))
    if (auto* d = dynamic_cast<DenseImpl*>(m.value().get())) out.emplace_back(m.key(), d);
  return out;
}

}  // namespace

nlohmann::json LoraOptions::to_json() const {
  return {{"r", shape.r},         {"lora_alpha", shape.alpha}, {"lora_dropout", shape.dropout}, {"use_rslora", shape.rslora},
          {"target_modules", target_modules}, {"modules_to_save", modules_to_save}};
}

nlohmann::json lora_targets_from_spec(const std::string& spec, torch::nn::Module& model) {
  if (spec.empty()) {
    const auto layers = dense_layers(model);
    for (const auto& pair : std::vector<std::vector<std::string>>{{"query", "value"}, {"q_lin", "v_lin"}, {"q_proj", "v_proj"}, {"c_attn"}, {"qkv"}}) {
      for (const auto& [name, d] : layers)
        if (ends_with_part(name, pair[0])) return pair;
    }
    throw Error("options", "lora_targets", layers.empty() ? "the model has no dense layers for LoRA (it adapts transformer models)"
                                                          : "no usual LoRA layers found in this architecture; name them with --lora-targets");
  }
  if (spec == "all-linear" || spec.find_first_of("\\.*+?()[]|^$") != std::string::npos) return spec;
  nlohmann::json list = nlohmann::json::array();
  size_t a = 0;
  while (a <= spec.size()) {
    size_t b = spec.find(',', a);
    if (b == std::string::npos) b = spec.size();
    if (b > a) list.push_back(spec.substr(a, b - a));
    a = b + 1;
  }
  return list;
}

std::vector<std::string> apply_lora(torch::nn::Module& model, const LoraOptions& o) {
  if (!o.target_modules.is_string() && !(o.target_modules.is_array() && !o.target_modules.empty()))
    throw Error("lora", "target_modules", "must be a list of layer names, a regular expression or 'all-linear'");
  if (o.target_modules.is_array())
    for (const auto& x : o.target_modules)
      if (!x.is_string()) throw Error("lora", "target_modules", "must hold layer names, got " + x.dump());
  std::vector<std::string> adapted;
  const auto layers = dense_layers(model);
  uint64_t k = 0;
  for (const auto& [name, d] : layers) {
    ++k;
    if (!matches(name, o)) continue;
    d->add_lora(o.shape, o.seed * 1000003ULL + k);
    adapted.push_back(name);
  }
  if (adapted.empty()) {
    std::set<std::string> kinds;
    for (const auto& [name, d] : layers) kinds.insert(name.substr(name.rfind('.') + 1));
    std::string list;
    for (const auto& s : kinds) list += (list.empty() ? "" : ", ") + s;
    if (layers.empty()) throw Error("lora", "target_modules", "the model has no dense layers for LoRA (it adapts transformer models)");
    throw Error("lora", "target_modules", fmt::format("{} matches no dense layer of the model (its layers end in: {})", o.target_modules.dump(), list));
  }
  for (const auto& p : model.named_parameters(true)) {
    const bool adapter = p.key().find(".lora_A.") != std::string::npos || p.key().find(".lora_B.") != std::string::npos;
    p.value().set_requires_grad(adapter || saved_module(p.key(), o));
  }
  return adapted;
}

std::vector<std::pair<std::string, torch::Tensor>> merged_state(torch::nn::Module& model, std::vector<std::pair<std::string, torch::Tensor>> state) {
  std::map<std::string, DenseImpl*> adapted;
  for (const auto& [name, d] : dense_layers(model))
    if (d->has_lora()) adapted.emplace(name + ".weight", d);
  if (adapted.empty()) return state;
  std::vector<std::pair<std::string, torch::Tensor>> out;
  torch::NoGradGuard ng;
  for (auto& [name, t] : state) {
    if (name.find(".lora_A.") != std::string::npos || name.find(".lora_B.") != std::string::npos) continue;
    auto it = adapted.find(name);
    if (it == adapted.end()) {
      out.emplace_back(name, t);
      continue;
    }
    const DenseImpl& d = *it->second;
    auto delta = torch::mm(d.lora_b(), d.lora_a()) * d.lora().scaling();
    if (d.fan_in_fan_out) delta = delta.t();
    out.emplace_back(name, t + delta.to(t.scalar_type()));
  }
  return out;
}

void merge_lora(torch::nn::Module& model) {
  for (const auto& [name, d] : dense_layers(model)) d->merge_lora();
}

std::vector<std::pair<std::string, torch::Tensor>> peft_adapter_state(torch::nn::Module& model, const LoraOptions& o) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : model.named_parameters(true)) {
    const bool adapter = p.key().find(".lora_A.") != std::string::npos || p.key().find(".lora_B.") != std::string::npos;
    if (adapter || saved_module(p.key(), o)) out.emplace_back(kPrefix + p.key(), p.value().detach());
  }
  for (const auto& b : model.named_buffers(true))
    if (saved_module(b.key(), o)) out.emplace_back(kPrefix + b.key(), b.value());
  return out;
}

void save_peft_adapter(torch::nn::Module& model, const LoraOptions& o, const std::string& dir, const std::string& base_model,
                       const std::string& task_type) {
  make_dirs(dir);
  bool fifo = false;
  for (const auto& [name, d] : dense_layers(model)) fifo = fifo || (d->has_lora() && d->fan_in_fan_out);
  // LoraConfig's fields as PEFT writes them (to_dict of the dataclass); kotsu's values where it has one
  nlohmann::json c = {{"alpha_pattern", nlohmann::json::object()},
                      {"auto_mapping", nullptr},
                      {"base_model_name_or_path", base_model},
                      {"bias", "none"},
                      {"fan_in_fan_out", fifo},
                      {"inference_mode", true},
                      {"init_lora_weights", true},
                      {"layers_pattern", nullptr},
                      {"layers_to_transform", nullptr},
                      {"lora_alpha", o.shape.alpha},
                      {"lora_dropout", o.shape.dropout},
                      {"modules_to_save", o.modules_to_save.empty() ? nlohmann::json(nullptr) : nlohmann::json(o.modules_to_save)},
                      {"peft_type", "LORA"},
                      {"r", o.shape.r},
                      {"rank_pattern", nlohmann::json::object()},
                      {"revision", nullptr},
                      {"target_modules", o.target_modules},
                      {"task_type", task_type},
                      {"use_dora", false},
                      {"use_rslora", o.shape.rslora}};
  NamedTensors tensors;
  for (auto& [n, t] : peft_adapter_state(model, o)) tensors.emplace_back(n, t.contiguous().cpu());
  save_safetensors((fs::path(dir) / "adapter_model.safetensors").string(), tensors, {{"format", "pt"}});
  write_atomic((fs::path(dir) / "adapter_config.json").string(), c.dump(2) + "\n");
}

bool is_peft_adapter_dir(const std::string& dir) { return fs::exists(fs::path(dir) / "adapter_config.json"); }

LoraOptions read_peft_adapter_config(const std::string& dir) {
  const std::string path = (fs::path(dir) / "adapter_config.json").string();
  const nlohmann::json c = read_json(path);
  if (!c.is_object()) throw Error(path, "", "not a JSON object");
  auto get = [&](const char* key, const nlohmann::json& fallback) { return c.contains(key) && !c[key].is_null() ? c[key] : fallback; };
  if (get("peft_type", "") != "LORA") throw Error(path, "peft_type", "is " + get("peft_type", "missing").dump() + ": kotsu loads LORA adapters");
  if (get("use_dora", false) != false) throw Error(path, "use_dora", "DoRA adapters are not supported");
  if (get("bias", "none") != "none") throw Error(path, "bias", "is " + c["bias"].dump() + ": only adapters without trained biases (\"none\") are supported");
  for (const char* k : {"rank_pattern", "alpha_pattern"})
    if (!get(k, nlohmann::json::object()).empty()) throw Error(path, k, "per-layer ranks or alphas are not supported");
  if (!get("layers_to_transform", nullptr).is_null()) throw Error(path, "layers_to_transform", "is not supported (give target_modules as a regular expression)");
  LoraOptions o;
  try {
    o.shape.r = c.at("r").get<int64_t>();
    o.shape.alpha = get("lora_alpha", 8).get<double>();
    o.shape.dropout = get("lora_dropout", 0.0).get<double>();
    o.shape.rslora = get("use_rslora", false).get<bool>();
    o.target_modules = c.at("target_modules");
    for (const auto& m : get("modules_to_save", nlohmann::json::array())) o.modules_to_save.push_back(m.get<std::string>());
  } catch (const nlohmann::json::exception& e) {
    throw Error(path, "", std::string("missing or mistyped field: ") + e.what());
  }
  if (o.shape.r < 1) throw Error(path, "r", "must be >= 1");
  return o;
}

LoraOptions load_peft_adapter(torch::nn::Module& model, const std::string& dir) {
  LoraOptions o = read_peft_adapter_config(dir);
  const std::string file = (fs::path(dir) / "adapter_model.safetensors").string();
  if (!fs::exists(file)) {
    if (fs::exists(fs::path(dir) / "adapter_model.bin"))
      throw Error(file, "", "missing; the adapter is in adapter_model.bin (a pickle), which kotsu does not read: save it with safe_serialization=True");
    throw Error(file, "", "missing");
  }
  apply_lora(model, o);
  std::map<std::string, torch::Tensor> have;
  for (auto& [n, t] : peft_adapter_state(model, o)) have.emplace(n, t);
  std::set<std::string> seen;
  torch::NoGradGuard ng;
  for (auto& [name, t] : load_safetensors(file)) {
    // a saved name may carry the adapter name ("lora_A.default.weight") when written by hand
    std::string key = std::regex_replace(name, std::regex(R"(\.(lora_[AB])\.[^.]+\.weight$)"), ".$1.weight");
    auto it = have.find(key);
    if (it == have.end()) throw Error(file, name, "not an adapter tensor of this model (is the adapter for another model?)");
    if (it->second.sizes() != t.sizes())
      throw Error(file, name, "shape " + c10::str(t.sizes()) + " does not match the model's " + c10::str(it->second.sizes()));
    it->second.copy_(t);
    seen.insert(key);
  }
  for (const auto& [n, t] : have)
    if (!seen.count(n)) throw Error(file, n, "missing from the adapter");
  return o;
}

CausalLmModel load_causal_lm_or_adapter(const std::string& dir, torch::ScalarType dtype) {
  if (!is_peft_adapter_dir(dir)) return load_causal_lm(dir, dtype);
  const std::string path = (fs::path(dir) / "adapter_config.json").string();
  const nlohmann::json c = read_json(path);
  if (!c.contains("base_model_name_or_path") || !c["base_model_name_or_path"].is_string())
    throw Error(path, "base_model_name_or_path", "missing: which model the adapter is for");
  const std::string base = c["base_model_name_or_path"].get<std::string>();
  if (!fs::is_directory(base)) throw Error(path, "base_model_name_or_path", "'" + base + "' is not a local model directory (kotsu does not download)");
  CausalLmModel m = load_causal_lm(base, dtype);
  load_peft_adapter(*m.model, dir);
  return m;
}

}  // namespace kotsu
