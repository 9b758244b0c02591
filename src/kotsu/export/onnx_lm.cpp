#include "kotsu/export/onnx_lm.hpp"

#include <torch/torch.h>

#include <limits>

#include "kotsu/core/error.hpp"
#include "kotsu/export/onnx_layers.hpp"

namespace kotsu {

void build_causal_lm_onnx(OnnxGraph& g, CausalLmModel& m) {
  const CausalLmConfig& c = m.config;
  if (c.model_type != "gpt2")
    throw Error("onnx export", "model_type", "'" + c.model_type + "' has no ONNX export yet (GPT-2 does)");
  const OnnxWeights w = weights_of(*m.model);
  const int64_t H = c.hidden_size;
  const std::vector<OnnxDim> bt = {std::string("batch"), std::string("sequence")};
  g.input("input_ids", OnnxType::Int64, bt);
  g.input("attention_mask", OnnxType::Int64, bt);

  // positions 0..T-1; which keys each query may see: causal and not padding -> additive bias [B, 1, T, T]
  auto T = g.op("Gather", {g.op("Shape", {"input_ids"}), g.int_scalar(1)}, {{"axis", int64_t(0)}}, "sequence_length");
  auto pos = g.op("Range", {g.int_scalar(0), T, g.int_scalar(1)}, {}, "positions");
  auto causal = g.op("LessOrEqual", {g.op("Unsqueeze", {pos, g.ints({0})}), g.op("Unsqueeze", {pos, g.ints({1})})}, {}, "causal");
  auto keep = g.op("Unsqueeze", {g.op("Cast", {"attention_mask"}, {{"to", int64_t(OnnxType::Bool)}}), g.ints({1, 2})});
  auto allowed = g.op("And", {causal, keep}, {}, "allowed");
  auto bias = g.op("Where", {allowed, g.scalar(0.0f), g.scalar(std::numeric_limits<float>::lowest())}, {}, "attention_bias");

  const std::string wte = g.weight("transformer.wte.weight", w.at("transformer.wte.weight"));
  auto x = g.op("Add", {g.op("Gather", {wte, "input_ids"}),
                        g.op("Gather", {g.weight("transformer.wpe.weight", w.at("transformer.wpe.weight")), pos})}, {}, "embeddings");
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = "transformer.h." + std::to_string(i) + ".";
    auto qkv = onnx_linear(g, onnx_layer_norm(g, x, w, p + "ln_1", c.norm_eps), w, p + "attn.c_attn", true);
    auto split = g.op("Split", {qkv, g.ints({H, H, H})}, {{"axis", int64_t(-1)}}, p + "qkv", 3);
    auto ctx = onnx_attention(g, split, OnnxGraph::output_name(split, 1), OnnxGraph::output_name(split, 2), bias, c.num_heads, H);
    auto h = g.op("Add", {x, onnx_linear(g, ctx, w, p + "attn.c_proj", true)});
    auto mlp = onnx_linear(g, onnx_activation(g, onnx_linear(g, onnx_layer_norm(g, h, w, p + "ln_2", c.norm_eps), w, p + "mlp.c_fc", true),
                                              c.activation), w, p + "mlp.c_proj", true);
    x = g.op("Add", {h, mlp}, {}, p + "out");
  }
  x = onnx_layer_norm(g, x, w, "transformer.ln_f", c.norm_eps);
  // the output matrix: lm_head, or the token embeddings (tied), transposed at load time by the runtime
  const std::string out = w.has("lm_head.weight") ? g.weight("lm_head.weight", w.at("lm_head.weight")) : wte;
  auto logits = g.op("MatMul", {x, g.op("Transpose", {out}, {{"perm", std::vector<int64_t>{1, 0}}})});
  g.output(logits, "logits", OnnxType::Float, {std::string("batch"), std::string("sequence"), c.vocab_size});
}

}  // namespace kotsu
