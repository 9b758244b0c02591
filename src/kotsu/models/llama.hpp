// kotsu/models/llama: the Llama family (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM) module for
// module as Hugging Face's modeling_llama.py with eager attention: RMSNorm (in float32), rotary position
// embeddings (rope_theta; rope_scaling linear or llama3), grouped-query attention (key/value heads repeated
// for the query heads that share them), SwiGLU feed-forward, tied or untied output matrix. Tensor names are
// the Hugging Face ones: model.embed_tokens.weight, model.layers.0.self_attn.q_proj.weight, ...,
// model.layers.0.mlp.gate_proj.weight, model.norm.weight, lm_head.weight. Qwen2 has biases on q/k/v only.
#pragma once
#include "kotsu/models/causal_lm.hpp"

namespace kotsu {

struct LlamaLayerImpl;

class Llama : public CausalLm {
 public:
  explicit Llama(const CausalLmConfig& config);
  torch::Tensor logits(const torch::Tensor& ids, KvCache* cache = nullptr, const torch::Tensor& mask = {},
                       const torch::Tensor& positions = {}) override;
  std::vector<ParamGroup> param_groups() override;
  const CausalLmConfig& config() const override { return config_; }
  // The rotary inverse frequencies [head_dim / 2] after rope_scaling, in float64 (for tests).
  torch::Tensor inv_freq() const { return inv_freq_; }

 private:
  CausalLmConfig config_;
  torch::Tensor embed_, norm_, lm_head_, inv_freq_;  // lm_head_ undefined when tied
  std::vector<std::shared_ptr<LlamaLayerImpl>> layers_;
};

}  // namespace kotsu
