// kotsu/models/causal_lm: what every decoder-only language model offers (GPT-2, the Llama family):
// next-token logits for a batch of token ids, optionally continuing a key/value cache, its parameters
// grouped bottom to top, and its tensors under their Hugging Face names. load_causal_lm reads a Hugging
// Face model directory (config.json + model.safetensors, or shards listed in model.safetensors.index.json).
// requires: ids [B, T] int64; mask [B, T_past + T] of 1 (token) / 0 (padding), or [B, T, T_past + T]
//           (which keys each query may see besides causality: packed sequences), or undefined;
//           positions [B, T] or undefined (then T_past, T_past + 1, ...).
// ensures:  logits [B, T, vocab] in the model's dtype; with a cache, the new keys and values are appended,
//           so decoding one token at a time gives the logits of one full forward pass.
#pragma once
#include <torch/nn/module.h>
#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

#include "kotsu/io/lm_config.hpp"
#include "kotsu/models/param_group.hpp"

namespace kotsu {

struct KvCache {
  std::vector<torch::Tensor> k, v;  // per layer [B, kv_heads, T_past, head_dim]; empty before the first call
  int64_t length() const { return k.empty() || !k[0].defined() ? 0 : k[0].size(2); }
};

class CausalLm : public torch::nn::Module {
 public:
  virtual torch::Tensor logits(const torch::Tensor& ids, KvCache* cache = nullptr, const torch::Tensor& mask = {},
                               const torch::Tensor& positions = {}) = 0;
  virtual std::vector<ParamGroup> param_groups() = 0;  // "embeddings", "layer.0" .. "layer.N-1", "head"
  virtual const CausalLmConfig& config() const = 0;
  // All tensors to save, with their Hugging Face names (a tied output matrix appears once, as the embedding).
  std::vector<std::pair<std::string, torch::Tensor>> state();
};

struct CausalLmModel {
  CausalLmConfig config;
  std::shared_ptr<CausalLm> model;
  LoadReport load_report;
};

// A Hugging Face causal-LM directory (config.json naming gpt2 or a Llama-family model type), or a PEFT
// adapter directory of one (adapter_config.json's task_type CAUSAL_LM).
bool is_causal_lm_dir(const std::string& dir);
std::shared_ptr<CausalLm> make_causal_lm(const CausalLmConfig& config);

// Which keys each query may attend to, [B or 1, 1, T, past + T]: keys at or before the query's position,
// and (with mask [B, past + T]) not padding, or (with mask [B, T, past + T]) allowed by the mask. Masked scores get the dtype's lowest finite value, as Hugging
// Face's eager attention does, so a fully masked (padding) row stays finite.
torch::Tensor causal_allowed(int64_t past, int64_t T, const torch::Tensor& mask, torch::Device device);
double lowest_value(torch::ScalarType t);
// The parameter groups of a decoder: "embeddings" (names starting with one of `embedding_prefixes`),
// "layer.i" (names starting with block_prefix + "i."), "head" (the rest: final norm, output matrix).
std::vector<ParamGroup> decoder_param_groups(torch::nn::Module& model, int64_t layers, const std::string& block_prefix,
                                             const std::vector<std::string>& embedding_prefixes);
// The model in `dir`; weights converted to `dtype`. Unknown extra tensors (GPT-2's attn.bias causal-mask
// buffers) are reported, missing or mis-shaped ones refused naming the file and tensor.
CausalLmModel load_causal_lm(const std::string& dir, torch::ScalarType dtype = torch::kFloat32);

}  // namespace kotsu
