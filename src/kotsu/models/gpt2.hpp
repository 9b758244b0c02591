// kotsu/models/gpt2: GPT-2 (GPT2LMHeadModel), module for module as Hugging Face's modeling_gpt2.py with
// eager attention, so tensor names are the Hugging Face ones: transformer.wte.weight, transformer.wpe.weight,
// transformer.h.0.ln_1.weight, transformer.h.0.attn.c_attn.weight ([in, 3 * hidden]: GPT-2's Conv1D stores
// weights transposed), ..., transformer.ln_f.weight, and lm_head.weight only when not tied to wte.
#pragma once
#include "kotsu/models/causal_lm.hpp"

namespace kotsu {

struct Gpt2BlockImpl;

class Gpt2 : public CausalLm {
 public:
  explicit Gpt2(const CausalLmConfig& config);
  torch::Tensor logits(const torch::Tensor& ids, KvCache* cache = nullptr, const torch::Tensor& mask = {},
                       const torch::Tensor& positions = {}) override;
  std::vector<ParamGroup> param_groups() override;
  const CausalLmConfig& config() const override { return config_; }

 private:
  CausalLmConfig config_;
  std::shared_ptr<torch::nn::Module> transformer_;
  torch::Tensor wte_, wpe_, ln_f_w_, ln_f_b_, lm_head_;  // lm_head_ undefined when tied
  std::vector<std::shared_ptr<Gpt2BlockImpl>> blocks_;
};

}  // namespace kotsu
