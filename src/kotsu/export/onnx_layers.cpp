#include "kotsu/export/onnx_layers.hpp"

#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "kotsu/core/error.hpp"

namespace kotsu {

const torch::Tensor& OnnxWeights::at(const std::string& name) const {
  auto it = tensors.find(name);
  if (it == tensors.end()) throw Error("onnx export", name, "the model has no such tensor");
  return it->second;
}

OnnxWeights weights_of(torch::nn::Module& model) {
  OnnxWeights w;
  torch::NoGradGuard ng;
  for (const auto& p : model.named_parameters(true)) w.tensors[p.key()] = p.value().detach().to(torch::kCPU).to(torch::kFloat32);
  for (const auto& b : model.named_buffers(true)) {
    torch::Tensor t = b.value().detach().to(torch::kCPU);
    w.tensors[b.key()] = t.is_floating_point() ? t.to(torch::kFloat32) : t;
  }
  return w;
}

std::string onnx_linear(OnnxGraph& g, const std::string& x, const OnnxWeights& w, const std::string& prefix, bool fan_in_fan_out) {
  const torch::Tensor& W = w.at(prefix + ".weight");
  const std::string wt = g.weight(prefix + ".weight", fan_in_fan_out ? W : W.t().contiguous());
  std::string y = g.op("MatMul", {x, wt}, {}, prefix + ".matmul");
  if (w.has(prefix + ".bias")) y = g.op("Add", {y, g.weight(prefix + ".bias", w.at(prefix + ".bias"))}, {}, prefix);
  return y;
}

std::string onnx_layer_norm(OnnxGraph& g, const std::string& x, const OnnxWeights& w, const std::string& prefix, double eps) {
  return g.op("LayerNormalization", {x, g.weight(prefix + ".weight", w.at(prefix + ".weight")), g.weight(prefix + ".bias", w.at(prefix + ".bias"))},
              {{"axis", int64_t(-1)}, {"epsilon", static_cast<float>(eps)}}, prefix);
}

std::string onnx_activation(OnnxGraph& g, const std::string& x, const std::string& name) {
  if (name == "relu") return g.op("Relu", {x});
  if (name == "gelu") {  // 0.5 x (1 + erf(x / sqrt 2))
    auto e = g.op("Erf", {g.op("Div", {x, g.scalar(static_cast<float>(std::sqrt(2.0)))})});
    return g.op("Mul", {g.op("Mul", {x, g.op("Add", {e, g.scalar(1.0f)})}), g.scalar(0.5f)}, {}, "gelu");
  }
  // gelu_new / gelu_pytorch_tanh: 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
  auto cube = g.op("Mul", {g.op("Mul", {x, x}), x});
  auto inner = g.op("Add", {x, g.op("Mul", {cube, g.scalar(0.044715f)})});
  auto t = g.op("Tanh", {g.op("Mul", {inner, g.scalar(static_cast<float>(std::sqrt(2.0 / M_PI)))})});
  return g.op("Mul", {g.op("Mul", {x, g.op("Add", {t, g.scalar(1.0f)})}), g.scalar(0.5f)}, {}, "gelu_tanh");
}

std::string onnx_split_heads(OnnxGraph& g, const std::string& x, int64_t heads, int64_t head_dim) {
  auto r = g.op("Reshape", {x, g.ints({0, 0, heads, head_dim})});
  return g.op("Transpose", {r}, {{"perm", std::vector<int64_t>{0, 2, 1, 3}}});
}

std::string onnx_attention(OnnxGraph& g, const std::string& q, const std::string& k, const std::string& v,
                           const std::string& bias, int64_t heads, int64_t hidden) {
  const int64_t d = hidden / heads;
  auto qs = g.op("Mul", {q, g.scalar(static_cast<float>(1.0 / std::sqrt(static_cast<double>(d))))});
  auto qh = onnx_split_heads(g, qs, heads, d);
  auto kt = g.op("Transpose", {g.op("Reshape", {k, g.ints({0, 0, heads, d})})}, {{"perm", std::vector<int64_t>{0, 2, 3, 1}}});
  auto vh = onnx_split_heads(g, v, heads, d);
  auto scores = g.op("MatMul", {qh, kt}, {}, "scores");
  if (!bias.empty()) scores = g.op("Add", {scores, bias});
  auto probs = g.op("Softmax", {scores}, {{"axis", int64_t(-1)}}, "probs");
  auto ctx = g.op("Transpose", {g.op("MatMul", {probs, vh})}, {{"perm", std::vector<int64_t>{0, 2, 1, 3}}});
  return g.op("Reshape", {ctx, g.ints({0, 0, hidden})}, {}, "context");
}

std::string onnx_padding_bias(OnnxGraph& g, const std::string& mask) {
  auto m = g.op("Cast", {mask}, {{"to", int64_t(OnnxType::Float)}});
  auto inv = g.op("Sub", {g.scalar(1.0f), m});
  auto b = g.op("Mul", {inv, g.scalar(std::numeric_limits<float>::lowest())});
  return g.op("Unsqueeze", {b, g.ints({1, 2})}, {}, "padding_bias");
}

}  // namespace kotsu
