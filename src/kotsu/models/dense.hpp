// kotsu/models/dense: the dense layer of kotsu's transformers, y = x W^T + b (Linear, weight [out, in]) or
// y = x W + b (GPT-2's Conv1D, weight [in, out]: fan_in_fan_out), with an optional LoRA branch as PEFT's
// lora.Linear computes it: y += lora_B(lora_A(dropout(x))) * scaling, scaling = alpha / r (alpha / sqrt(r)
// with rsLoRA), the branch in float32 for float32, bf16 or f16 base weights (float64 for float64). lora_A [r, in] starts
// Kaiming-uniform (as nn.Linear), lora_B [out, r] at zero, so a new adapter changes nothing; they are
// registered as submodules "lora_A" and "lora_B" with a "weight" each, so parameter names are PEFT's
// saved names ("...q_proj.lora_A.weight").
// quantize_int8(): inference with int8 weights (per output channel, symmetric) and int8 activations
// quantized per batch (dynamic quantisation), through libtorch's quantized::linear_dynamic on the oneDNN
// engine; the float weight is released, so the layer can no longer train or be saved.
#pragma once
#include <ATen/core/ivalue.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>

namespace kotsu {

struct LoraShape {
  int64_t r = 8;
  double alpha = 16;
  double dropout = 0.0;
  bool rslora = false;
  double scaling() const;
};

class DenseImpl : public torch::nn::Module {
 public:
  DenseImpl(int64_t in, int64_t out, bool bias, bool fan_in_fan_out = false);
  torch::Tensor forward(const torch::Tensor& x);

  // Adds a LoRA branch (lora_A drawn from `gen`'s stream); the base weight and bias stop requiring grad.
  void add_lora(const LoraShape& shape, uint64_t seed);
  // Folds the branch into the weight (W += scaling * B A, transposed for fan_in_fan_out) and removes it.
  void merge_lora();
  bool has_lora() const { return lora_a_.defined(); }
  // Switches to int8 inference (refuses a layer with a LoRA branch: merge it first). Returns the bytes
  // of float weight released.
  int64_t quantize_int8();
  bool is_int8() const { return !packed_.isNone(); }
  const LoraShape& lora() const { return lora_; }
  torch::Tensor lora_a() const { return lora_a_; }
  torch::Tensor lora_b() const { return lora_b_; }

  torch::Tensor weight, bias;  // bias undefined when the layer has none
  const int64_t in_features, out_features;
  const bool fan_in_fan_out;

 private:
  torch::Tensor lora_a_, lora_b_;
  LoraShape lora_;
  c10::IValue packed_;  // quantized::linear_prepack's packed weight and bias; None: float
};
TORCH_MODULE(Dense);

}  // namespace kotsu
