#include "kotsu/models/text_classifier.hpp"

#include <torch/torch.h>

#include <set>

#include "kotsu/core/error.hpp"

namespace kotsu {

torch::Tensor mean_pooled(const torch::Tensor& hidden, const torch::Tensor& attention_mask) {
  const auto m = attention_mask.unsqueeze(-1).to(hidden.scalar_type());
  const auto mean = (hidden * m).sum(1) / m.sum(1).clamp_min(1e-9);
  return torch::nn::functional::normalize(mean, torch::nn::functional::NormalizeFuncOptions().p(2).dim(1).eps(1e-12));
}

std::vector<ParamGroup> TextClassifier::group_by_prefix(const std::string& embeddings, const std::string& layers,
                                                        const std::string& pooler) {
  std::vector<ParamGroup> groups{{"embeddings", {}}};
  for (int64_t i = 0; i < num_layers(); ++i) groups.push_back({"layer." + std::to_string(i), {}});
  if (!pooler.empty()) groups.push_back({"pooler", {}});
  groups.push_back({"head", {}});
  for (const auto& p : named_parameters(true)) {
    const std::string& n = p.key();
    std::string g = "head";
    if (n.rfind(embeddings, 0) == 0) g = "embeddings";
    else if (n.rfind(layers, 0) == 0) g = "layer." + n.substr(layers.size(), n.find('.', layers.size()) - layers.size());
    else if (!pooler.empty() && n.rfind(pooler, 0) == 0) g = "pooler";
    for (auto& grp : groups)
      if (grp.name == g) grp.params.emplace_back(n, p.value());
  }
  return groups;
}

void TextClassifier::init_head_like_hf(double range, uint64_t seed) {
  for (auto& g : param_groups())
    if (g.name == "head") init_like_hf(g.params, range, seed);
}

void TextClassifier::init_all_like_hf(double range, uint64_t seed) {
  std::vector<std::pair<std::string, torch::Tensor>> all;
  for (const auto& p : named_parameters(true)) all.emplace_back(p.key(), p.value());
  init_like_hf(all, range, seed);
}

void init_like_hf(const std::vector<std::pair<std::string, torch::Tensor>>& params, double range, uint64_t seed) {
  torch::NoGradGuard ng;
  auto gen = at::detail::createCPUGenerator(seed);
  auto ends_with = [](const std::string& n, const std::string& suffix) {
    return n.size() >= suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  for (const auto& [n, t] : params) {
    if (ends_with(n, "LayerNorm.weight") || ends_with(n, "layer_norm.weight")) t.fill_(1.0);
    else if (ends_with(n, ".bias")) t.zero_();
    else t.copy_(at::normal(0.0, range, t.sizes(), gen).to(t.dtype()));
  }
}

namespace {
std::string legacy_name(std::string n) {
  auto replace_suffix = [&](const std::string& from, const std::string& to) {
    if (n.size() >= from.size() && n.compare(n.size() - from.size(), from.size(), from) == 0)
      n = n.substr(0, n.size() - from.size()) + to;
  };
  replace_suffix("LayerNorm.gamma", "LayerNorm.weight");
  replace_suffix("LayerNorm.beta", "LayerNorm.bias");
  return n;
}
}  // namespace

LoadReport load_weights(TextClassifier& model, const std::map<std::string, torch::Tensor>& tensors,
                        const std::string& path, uint64_t seed, bool fresh_head) {
  std::map<std::string, const torch::Tensor*> by_name;
  for (const auto& [k, v] : tensors) by_name[legacy_name(k)] = &v;
  const std::string prefix = model.base_prefix();
  std::set<std::string> used;
  LoadReport report;
  bool head_missing = false;
  std::vector<std::pair<std::string, torch::Tensor>> head_params;
  for (const auto& g : model.param_groups())
    if (g.name == "head") head_params = g.params;
  std::set<std::string> head_names;
  for (auto& [n, t] : head_params) head_names.insert(n);

  torch::NoGradGuard ng;
  for (auto& [name, param] : model.state()) {
    const torch::Tensor* src = nullptr;
    std::string found;
    for (const std::string& cand : {name, name.rfind(prefix, 0) == 0 ? name.substr(prefix.size()) : std::string()}) {
      if (cand.empty()) continue;
      auto it = by_name.find(cand);
      if (it != by_name.end()) {
        src = it->second;
        found = cand;
        break;
      }
    }
    const bool is_head = head_names.count(name) != 0;
    if (is_head && fresh_head) {
      head_missing = true;
      if (src) used.insert(found);
      continue;
    }
    if (!src) {
      if (is_head) {
        head_missing = true;
        continue;
      }
      throw Error(path, name, "tensor missing from the checkpoint");
    }
    if (src->sizes() != param.sizes()) {
      if (is_head) {
        head_missing = true;
        used.insert(found);
        continue;
      }
      throw Error(path, name, "shape " + c10::str(src->sizes()) + " does not match the config's " + c10::str(param.sizes()));
    }
    param.copy_(*src);
    used.insert(found);
    ++report.loaded;
  }
  for (const auto& [k, v] : by_name)
    if (!used.count(k) && k.find("position_ids") == std::string::npos) report.unexpected.push_back(k);
  if (head_missing) {
    model.init_head(seed);
    report.head_initialised = true;
  }
  return report;
}

}  // namespace kotsu
