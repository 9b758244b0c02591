// kotsu/models/lora: LoRA adapters on a model's dense layers (models/dense), in Hugging Face PEFT's file
// format. Targets are chosen as PEFT's LoraConfig.target_modules chooses them: a list of names (a layer
// matches when its name equals one or ends with "." + one), a single string that is a regular expression
// over the whole layer name, or "all-linear" (every dense layer but the classification head). Every
// parameter not in an adapter is frozen (no gradient is ever allocated for it) except the modules named in
// modules_to_save (a new classification head), which train fully.
// Files (peft/utils/save_and_load.py, tuners/lora/config.py): adapter_config.json (peft_type "LORA", r,
// lora_alpha, lora_dropout, target_modules, use_rslora, fan_in_fan_out, bias "none", modules_to_save,
// task_type, base_model_name_or_path, ...) and adapter_model.safetensors with the tensors
// "base_model.model.<layer>.lora_A.weight" [r, in], "...lora_B.weight" [out, r] and, for modules_to_save,
// "base_model.model.<module>.<param>".
#pragma once
#include <torch/nn/module.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kotsu/models/causal_lm.hpp"
#include "kotsu/models/dense.hpp"

namespace kotsu {

struct LoraOptions {
  LoraShape shape;
  nlohmann::json target_modules = nlohmann::json::array({"q_proj", "v_proj"});  // list, regex string or "all-linear"
  std::vector<std::string> modules_to_save;  // module names (e.g. "classifier") trained fully and saved with the adapter
  std::vector<std::string> head_modules;     // what "all-linear" leaves out (the model's output/classification layers)
  uint64_t seed = 0;
  nlohmann::json to_json() const;  // the LoRA part of a run's options
};

// --lora-targets as written: "" (the architecture's usual layers, as PEFT chooses them: query,value for
// BERT/RoBERTa, q_lin,v_lin for DistilBERT, q_proj,v_proj for the Llama family, c_attn for GPT-2, qkv for
// USE-Lite), "all-linear", a comma list of names, or (any of \.*+?()[]|^$ in it) a regular expression.
nlohmann::json lora_targets_from_spec(const std::string& spec, torch::nn::Module& model);
// Adds adapters to the matching dense layers of `model` and freezes the rest; returns the adapted layers'
// names. No match is an error naming the targets and listing the model's dense layers.
std::vector<std::string> apply_lora(torch::nn::Module& model, const LoraOptions& o);
// Folds every adapter into its base weight (and removes it): the model then computes the same function
// without adapters.
void merge_lora(torch::nn::Module& model);
// `state` (the model's tensors by name) as a plain model holds them: each adapted weight with its adapter
// folded in (W + scaling B A, a new tensor: the model is unchanged), the adapter tensors left out. What a
// classifier trained with LoRA saves, so that its run directory loads anywhere as an ordinary model.
std::vector<std::pair<std::string, torch::Tensor>> merged_state(torch::nn::Module& model, std::vector<std::pair<std::string, torch::Tensor>> state);
// The adapter tensors under PEFT's names (adapters, then modules_to_save).
std::vector<std::pair<std::string, torch::Tensor>> peft_adapter_state(torch::nn::Module& model, const LoraOptions& o);
// Writes DIR/adapter_config.json and DIR/adapter_model.safetensors (atomically).
void save_peft_adapter(torch::nn::Module& model, const LoraOptions& o, const std::string& dir, const std::string& base_model,
                       const std::string& task_type);
// Reads DIR/adapter_config.json into options; refuses what kotsu does not compute (other peft types,
// DoRA, trained biases, per-layer rank or alpha patterns), naming the key.
LoraOptions read_peft_adapter_config(const std::string& dir);
// apply_lora with the directory's config, then its tensors (every one must exist in the model with its
// shape; every adapter tensor of the model must be in the file).
LoraOptions load_peft_adapter(torch::nn::Module& model, const std::string& dir);
bool is_peft_adapter_dir(const std::string& dir);
// A causal LM directory, or a PEFT adapter directory: its base model (adapter_config.json's
// base_model_name_or_path, a local directory) with the adapter applied.
CausalLmModel load_causal_lm_or_adapter(const std::string& dir, torch::ScalarType dtype = torch::kFloat32);

}  // namespace kotsu
