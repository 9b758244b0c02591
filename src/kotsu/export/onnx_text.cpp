#include "kotsu/export/onnx_text.hpp"

#include <torch/torch.h>

#include "kotsu/core/error.hpp"
#include "kotsu/export/onnx_layers.hpp"

namespace kotsu {

namespace {

// Gathers rows [0, T) of an embedding table, T the input's sequence length.
std::string arange_positions(OnnxGraph& g, const std::string& ids) {
  auto T = g.op("Gather", {g.op("Shape", {ids}), g.int_scalar(1)}, {{"axis", int64_t(0)}}, "sequence_length");
  return g.op("Range", {g.int_scalar(0), T, g.int_scalar(1)}, {}, "positions");
}

// models/text_classifier's mean_pooled: the mean of the states over the real tokens, L2-normalised.
std::string mean_pooled(OnnxGraph& g, const std::string& x, const std::string& mask) {
  auto m = g.op("Unsqueeze", {g.op("Cast", {mask}, {{"to", int64_t(OnnxType::Float)}}), g.ints({2})});
  auto sum = g.op("ReduceSum", {g.op("Mul", {x, m}), g.ints({1})}, {{"keepdims", int64_t(0)}});
  auto count = g.op("Max", {g.op("ReduceSum", {m, g.ints({1})}, {{"keepdims", int64_t(0)}}), g.scalar(1e-9f)});
  auto mean = g.op("Div", {sum, count});
  auto norm = g.op("Sqrt", {g.op("ReduceSum", {g.op("Mul", {mean, mean}), g.ints({1})}, {{"keepdims", int64_t(1)}})});
  return g.op("Div", {mean, g.op("Max", {norm, g.scalar(1e-12f)})}, {}, "mean_pooled");
}

}  // namespace

void build_text_classifier_onnx(OnnxGraph& g, TextModel& m) {
  const EncoderConfig& c = m.config;
  const bool distil = c.model_type == "distilbert", roberta = c.model_type == "roberta";
  if (!distil && !roberta && c.model_type != "bert")
    throw Error("onnx export", "model_type", "'" + c.model_type + "' has no ONNX export (BERT, RoBERTa and DistilBERT do)");
  const OnnxWeights w = weights_of(*m.model);
  const std::string base = distil ? "distilbert." : m.model->base_prefix();
  const bool token_types = !distil && c.type_vocab_size > 0;
  const int64_t H = c.hidden_size, heads = c.num_attention_heads;

  const std::vector<OnnxDim> bt = {std::string("batch"), std::string("sequence")};
  g.input("input_ids", OnnxType::Int64, bt);
  g.input("attention_mask", OnnxType::Int64, bt);
  if (token_types) g.input("token_type_ids", OnnxType::Int64, bt);

  // embeddings
  const std::string e = base + "embeddings.";
  std::string x = g.op("Gather", {g.weight(e + "word_embeddings.weight", w.at(e + "word_embeddings.weight")), "input_ids"}, {}, "word_embeddings");
  std::string pos;
  if (roberta) {  // padding_idx + cumulative count of non-padding tokens, padding at padding_idx
    auto not_pad = g.op("Cast", {g.op("Not", {g.op("Equal", {"input_ids", g.int_scalar(c.pad_token_id)})})}, {{"to", int64_t(OnnxType::Int64)}});
    auto cum = g.op("CumSum", {not_pad, g.int_scalar(1)});
    pos = g.op("Add", {g.op("Mul", {cum, not_pad}), g.int_scalar(c.pad_token_id)}, {}, "positions");
  } else {
    pos = arange_positions(g, "input_ids");
  }
  x = g.op("Add", {x, g.op("Gather", {g.weight(e + "position_embeddings.weight", w.at(e + "position_embeddings.weight")), pos})});
  if (token_types)
    x = g.op("Add", {x, g.op("Gather", {g.weight(e + "token_type_embeddings.weight", w.at(e + "token_type_embeddings.weight")), "token_type_ids"})});
  x = onnx_layer_norm(g, x, w, e + "LayerNorm", distil ? 1e-12 : c.layer_norm_eps);

  const std::string bias = onnx_padding_bias(g, "attention_mask");
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    if (distil) {
      const std::string p = base + "transformer.layer." + std::to_string(i) + ".";
      auto ctx = onnx_attention(g, onnx_linear(g, x, w, p + "attention.q_lin"), onnx_linear(g, x, w, p + "attention.k_lin"),
                                onnx_linear(g, x, w, p + "attention.v_lin"), bias, heads, H);
      auto sa = onnx_layer_norm(g, g.op("Add", {onnx_linear(g, ctx, w, p + "attention.out_lin"), x}), w, p + "sa_layer_norm", 1e-12);
      auto ff = onnx_linear(g, onnx_activation(g, onnx_linear(g, sa, w, p + "ffn.lin1"), c.hidden_act), w, p + "ffn.lin2");
      x = onnx_layer_norm(g, g.op("Add", {ff, sa}), w, p + "output_layer_norm", 1e-12);
    } else {
      const std::string p = base + "encoder.layer." + std::to_string(i) + ".";
      const std::string s = p + "attention.self.";
      auto ctx = onnx_attention(g, onnx_linear(g, x, w, s + "query"), onnx_linear(g, x, w, s + "key"), onnx_linear(g, x, w, s + "value"),
                                bias, heads, H);
      auto a = onnx_layer_norm(g, g.op("Add", {onnx_linear(g, ctx, w, p + "attention.output.dense"), x}), w,
                               p + "attention.output.LayerNorm", c.layer_norm_eps);
      auto inter = onnx_activation(g, onnx_linear(g, a, w, p + "intermediate.dense"), c.hidden_act);
      x = onnx_layer_norm(g, g.op("Add", {onnx_linear(g, inter, w, p + "output.dense"), a}), w, p + "output.LayerNorm", c.layer_norm_eps);
    }
  }

  // the first token's state (or the mean-pooled embedding), then the head
  const bool mean = c.pooling == "mean";
  std::string f = mean ? mean_pooled(g, x, "attention_mask") : g.op("Gather", {x, g.int_scalar(0)}, {{"axis", int64_t(1)}}, "first_token");
  std::string logits;
  if (distil) {
    logits = onnx_linear(g, g.op("Relu", {onnx_linear(g, f, w, "pre_classifier")}), w, "classifier");
  } else if (roberta) {
    logits = onnx_linear(g, g.op("Tanh", {onnx_linear(g, f, w, "classifier.dense")}), w, "classifier.out_proj");
  } else if (mean) {
    logits = onnx_linear(g, f, w, "classifier");
  } else {
    logits = onnx_linear(g, g.op("Tanh", {onnx_linear(g, f, w, base + "pooler.dense")}), w, "classifier");
  }
  const int64_t L = m.model->num_labels();
  auto probs = g.op("Softmax", {logits}, {{"axis", int64_t(-1)}});
  g.output(logits, "logits", OnnxType::Float, {std::string("batch"), L});
  g.output(probs, "probabilities", OnnxType::Float, {std::string("batch"), L});
}

}  // namespace kotsu
