// kotsu/export/onnx_layers: the layers kotsu's architectures share, written as ONNX operators with the
// same arithmetic as the libtorch forward passes in models/ (and so as Hugging Face's eager code):
// a linear layer as MatMul with the transposed weight plus Add, LayerNormalization, the activations,
// multi-head attention with an additive padding bias, and a convolution + batch norm + activation.
#pragma once
#include <torch/nn/module.h>
#include <torch/types.h>

#include <map>
#include <string>

#include "kotsu/export/onnx_graph.hpp"

namespace kotsu {

// A model's parameters and buffers by name, as float32 on the CPU; at() names a missing tensor.
struct OnnxWeights {
  std::map<std::string, torch::Tensor> tensors;
  const torch::Tensor& at(const std::string& name) const;
  bool has(const std::string& name) const { return tensors.count(name) != 0; }
};
OnnxWeights weights_of(torch::nn::Module& model);

// y = x W^T + b for `prefix`.weight [out, in] (GPT-2's Conv1D, fan_in_fan_out: [in, out], y = x W + b)
// and `prefix`.bias when the model has it.
std::string onnx_linear(OnnxGraph& g, const std::string& x, const OnnxWeights& w, const std::string& prefix,
                        bool fan_in_fan_out = false);
// LayerNormalization over the last axis with `prefix`.weight and `prefix`.bias.
std::string onnx_layer_norm(OnnxGraph& g, const std::string& x, const OnnxWeights& w, const std::string& prefix, double eps);
// gelu (erf), gelu_new / gelu_pytorch_tanh (tanh approximation), relu: as models/ops' activation().
std::string onnx_activation(OnnxGraph& g, const std::string& x, const std::string& name);
// [B, T, H] -> [B, heads, T, d]
std::string onnx_split_heads(OnnxGraph& g, const std::string& x, int64_t heads, int64_t head_dim);
// softmax(q k^T / sqrt(d) + bias) v for q, k, v [B, T, H]; bias broadcast to [B, heads, T, T] (or empty);
// returns the context [B, T, H].
std::string onnx_attention(OnnxGraph& g, const std::string& q, const std::string& k, const std::string& v,
                           const std::string& bias, int64_t heads, int64_t hidden);
// attention_mask [B, T] (int64 1/0) -> [B, 1, 1, T] float: 0 for tokens, float's lowest for padding.
std::string onnx_padding_bias(OnnxGraph& g, const std::string& mask);

}  // namespace kotsu
