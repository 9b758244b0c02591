#include "kotsu/models/use_lite.hpp"

#include <torch/torch.h>

#include <cmath>

#include "kotsu/core/error.hpp"
#include "kotsu/models/dense.hpp"
#include "kotsu/models/ops.hpp"

namespace kotsu {

namespace {
int64_t embedding_size(const EncoderConfig& c) {
  return c.raw.is_object() && c.raw.contains("embedding_size") && c.raw["embedding_size"].is_number_integer()
             ? c.raw["embedding_size"].get<int64_t>()
             : c.hidden_size;
}
torch::nn::LayerNorm norm(int64_t n, double eps) { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({n}).eps(eps)); }
}  // namespace

struct UseLiteEmbeddingsImpl : torch::nn::Module {
  torch::nn::Embedding word_embeddings{nullptr};
  torch::Tensor inv_timescales;
  double p;
  explicit UseLiteEmbeddingsImpl(const EncoderConfig& c) : p(c.hidden_dropout_prob) {
    const int64_t E = embedding_size(c);
    word_embeddings = register_module("word_embeddings", torch::nn::Embedding(c.vocab_size, E));
    // tensor2tensor's get_timing_signal_1d (min timescale 1, max 1e4); the checkpoint's copy replaces it
    const int64_t n = E / 2;
    auto inc = std::log(1e4) / static_cast<double>(std::max<int64_t>(1, n - 1));
    inv_timescales = register_buffer("inv_timescales", torch::exp(torch::arange(n, torch::kFloat64) * -inc).to(torch::kFloat32));
  }
  torch::Tensor forward(const torch::Tensor& ids) {
    const int64_t T = ids.size(1);
    auto pos = torch::arange(T, inv_timescales.options()).unsqueeze(1) * inv_timescales.unsqueeze(0);
    auto timing = torch::cat({torch::sin(pos), torch::cos(pos)}, 1);
    // the graph adds the embedding twice: embedding + (embedding + timing)
    return kotsu::dropout(2 * word_embeddings(ids) + timing, p, is_training());
  }
};

struct UseLiteLayerImpl : torch::nn::Module {
  torch::nn::LayerNorm attention_layer_norm{nullptr}, ffn_layer_norm{nullptr};
  Dense qkv{nullptr}, output{nullptr}, residual{nullptr}, fc1{nullptr}, fc2{nullptr};
  int64_t heads;
  double p, attn_p;
  std::string act;
  // in: the width coming in; attention runs at that width; out: hidden_size (a dense residual when they differ)
  UseLiteLayerImpl(const EncoderConfig& c, int64_t in)
      : heads(c.num_attention_heads), p(c.hidden_dropout_prob), attn_p(c.attention_probs_dropout_prob), act(c.hidden_act) {
    const int64_t H = c.hidden_size;
    attention_layer_norm = register_module("attention_layer_norm", norm(in, c.layer_norm_eps));
    auto attn = register_module("attention", std::make_shared<torch::nn::Module>());
    qkv = attn->register_module("qkv", Dense(in, 3 * in, true));
    output = attn->register_module("output", Dense(in, H, true));
    if (in != H) residual = register_module("residual", Dense(in, H, true));
    ffn_layer_norm = register_module("ffn_layer_norm", norm(H, c.layer_norm_eps));
    auto ffn = register_module("ffn", std::make_shared<torch::nn::Module>());
    fc1 = ffn->register_module("fc1", Dense(H, c.intermediate_size, true));
    fc2 = ffn->register_module("fc2", Dense(c.intermediate_size, H, true));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask_bias) {
    auto parts = qkv(attention_layer_norm(x)).chunk(3, -1);
    auto ctx = attention(parts[0], parts[1], parts[2], mask_bias, heads, attn_p, is_training());
    auto h = (residual ? residual(x) : x) + kotsu::dropout(output(ctx), p, is_training());
    auto f = fc2(activation(fc1(ffn_layer_norm(h)), act));
    return h + kotsu::dropout(f, p, is_training());
  }
};

UseLiteClassifier::UseLiteClassifier(const EncoderConfig& config, int64_t num_labels)
    : config_(config), num_labels_(num_labels) {
  auto base = register_module("use_lite", std::make_shared<torch::nn::Module>());
  embeddings_ = base->register_module("embeddings", std::make_shared<UseLiteEmbeddingsImpl>(config));
  auto encoder = base->register_module("encoder", std::make_shared<torch::nn::Module>());
  auto list = encoder->register_module("layer", std::make_shared<torch::nn::Module>());
  int64_t width = embedding_size(config);
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    layers_.push_back(list->register_module(std::to_string(i), std::make_shared<UseLiteLayerImpl>(config, width)));
    width = config.hidden_size;
  }
  auto pooler = base->register_module("pooler", std::make_shared<torch::nn::Module>());
  pooler_ = pooler->register_module("dense", torch::nn::Linear(width, width));
  classifier_ = register_module("classifier", torch::nn::Linear(width, num_labels));
}

torch::Tensor UseLiteClassifier::encode(const TextBatch& batch) {
  auto x = embeddings_->forward(batch.input_ids);
  auto bias = attention_mask_bias(batch.attention_mask, x.scalar_type());
  for (auto& l : layers_) x = l->forward(x, bias);
  return x;
}

torch::Tensor UseLiteClassifier::embed(const TextBatch& batch) {
  auto x = encode(batch);
  auto mask = batch.attention_mask.to(x.scalar_type()).unsqueeze(2);
  auto pooled = (x * mask).sum(1) / mask.sum(1).clamp_min(1);
  auto out = torch::tanh(pooler_(pooled));
  return out / out.norm(2, 1, true).clamp_min(1e-6);
}

torch::Tensor UseLiteClassifier::features(const TextBatch& batch) { return embed(batch); }

torch::Tensor UseLiteClassifier::head(const torch::Tensor& f) {
  // the embedding has unit length: scaled to unit mean square per feature, so the head's learning rate
  // and initialisation mean what they mean for other encoders' features
  const double scale = std::sqrt(static_cast<double>(f.size(-1)));
  return classifier_(kotsu::dropout(f * scale, config_.head_dropout(), is_training()));
}

std::vector<ParamGroup> UseLiteClassifier::param_groups() {
  return group_by_prefix("use_lite.embeddings.", "use_lite.encoder.layer.", "use_lite.pooler.");
}

void UseLiteClassifier::init_head(uint64_t seed) { init_head_like_hf(config_.initializer_range, seed); }

void UseLiteClassifier::init_all(uint64_t seed) { init_all_like_hf(config_.initializer_range, seed); }

std::vector<torch::Tensor> UseLiteClassifier::use_sparse_embedding_grads() {
  embeddings_->word_embeddings->options.sparse(true);
  return {embeddings_->word_embeddings->weight};
}

// ---- the TF.js graph's weights under kotsu's names ----

namespace {

// The one weight whose name contains `part` (the graph's names are long and unique by their tails).
const TfjsWeight& weight(const TfjsModel& m, const std::string& part) {
  const TfjsWeight* hit = nullptr;
  for (const auto& w : m.weights)
    if (w.name.find(part) != std::string::npos) {
      if (hit) throw Error(m.path, part, "matches more than one weight");
      hit = &w;
    }
  if (!hit || !hit->value.defined() || hit->dtype != "float32") throw Error(m.path, part, "USE-Lite weight not found");
  return *hit;
}

torch::Tensor value(const TfjsModel& m, const std::string& part, std::vector<int64_t> shape) {
  const TfjsWeight& w = weight(m, part);
  torch::Tensor t = w.value.to(torch::kFloat32).contiguous();
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  if (t.numel() != n) throw Error(m.path, w.name, "has shape " + c10::str(t.sizes()) + ", USE-Lite expects " + c10::str(shape));
  return t.reshape(shape).clone();
}

const char* kEmbeddings = "module/Embeddings_en";
const char* kTanh = "hidden_layers/tanh_layer_0/weights";

}  // namespace

bool is_use_lite(const TfjsModel& m) {
  bool emb = false, tanh = false;
  for (const auto& w : m.weights) {
    emb = emb || w.name.find(kEmbeddings) != std::string::npos;
    tanh = tanh || w.name.find(kTanh) != std::string::npos;
  }
  return emb && tanh;
}

UseLiteImport use_lite_from_tfjs(const TfjsModel& m) {
  if (!is_use_lite(m)) throw Error(m.path, "weightsManifest", "not Universal Sentence Encoder Lite (no Embeddings_en / tanh_layer_0 weights)");
  UseLiteImport out;
  const TfjsWeight& emb = weight(m, kEmbeddings);
  if (emb.shape.size() != 2) throw Error(m.path, emb.name, "is not a matrix");
  const int64_t V = emb.shape[0], E = emb.shape[1];
  auto& T = out.tensors;
  T.emplace_back("use_lite.embeddings.word_embeddings.weight", value(m, kEmbeddings, {V, E}));
  T.emplace_back("use_lite.embeddings.inv_timescales", value(m, "AddTimingSignal/TimingSignal/ExpandDims_1", {E / 2}));
  int64_t in = E, H = 0, I = 0, heads = 4, layers = 0;
  const std::string K = "Encoder_en/KonaTransformer/Encode/";
  for (int l = 0;; ++l) {
    const std::string L = K + "Layer_" + std::to_string(l) + "/TransformerLayer/";
    const std::string S = "TransformerStack/Layer_" + std::to_string(l) + "/TransformerLayer/";
    bool present = false;
    for (const auto& w : m.weights) present = present || w.name.find(L) != std::string::npos;
    if (!present) break;
    const std::string p = "use_lite.encoder.layer." + std::to_string(l) + ".";
    const TfjsWeight& out_k = weight(m, L + "MultiheadAttention/output_transform_single/kernel");
    if (out_k.shape.size() != 4) throw Error(m.path, out_k.name, "is not a [1, 1, in, out] kernel");
    H = out_k.shape[3];
    const TfjsWeight& ff1 = weight(m, S + "FFN/conv1/Tensordot/Reshape_1");
    if (ff1.shape.size() != 2) throw Error(m.path, ff1.name, "is not a matrix");
    I = ff1.shape[1];
    // TF kernels are [in, out]; torch's Linear stores [out, in]
    T.emplace_back(p + "attention_layer_norm.weight", value(m, L + "layer_prepostprocess/layer_norm/layer_norm_scale", {in}));
    T.emplace_back(p + "attention_layer_norm.bias", value(m, L + "layer_prepostprocess/layer_norm/layer_norm_bias", {in}));
    T.emplace_back(p + "attention.qkv.weight", value(m, L + "MultiheadAttention/qkv_transform_single/kernel", {in, 3 * in}).t().contiguous());
    T.emplace_back(p + "attention.qkv.bias", value(m, L + "MultiheadAttention/qkv_transform_single/bias", {3 * in}));
    T.emplace_back(p + "attention.output.weight", value(m, L + "MultiheadAttention/output_transform_single/kernel", {in, H}).t().contiguous());
    T.emplace_back(p + "attention.output.bias", value(m, L + "MultiheadAttention/output_transform_single/bias", {H}));
    if (in != H) {
      T.emplace_back(p + "residual.weight", value(m, L + "dense/kernel", {in, H}).t().contiguous());
      T.emplace_back(p + "residual.bias", value(m, L + "dense/bias", {H}));
    }
    T.emplace_back(p + "ffn_layer_norm.weight", value(m, L + "FFN/layer_prepostprocess/layer_norm/layer_norm_scale", {H}));
    T.emplace_back(p + "ffn_layer_norm.bias", value(m, L + "FFN/layer_prepostprocess/layer_norm/layer_norm_bias", {H}));
    T.emplace_back(p + "ffn.fc1.weight", value(m, S + "FFN/conv1/Tensordot/Reshape_1", {H, I}).t().contiguous());
    T.emplace_back(p + "ffn.fc1.bias", value(m, L + "FFN/conv1/bias", {I}));
    T.emplace_back(p + "ffn.fc2.weight", value(m, S + "FFN/conv2/Tensordot/Reshape_1", {I, H}).t().contiguous());
    T.emplace_back(p + "ffn.fc2.bias", value(m, L + "FFN/conv2/bias", {H}));
    in = H;
    ++layers;
  }
  if (layers == 0) throw Error(m.path, K + "Layer_0", "USE-Lite weight not found");
  T.emplace_back("use_lite.pooler.dense.weight", value(m, kTanh, {H, H}).t().contiguous());
  T.emplace_back("use_lite.pooler.dense.bias", value(m, "hidden_layers/tanh_layer_0/bias", {H}));
  if (H % heads != 0 || E % heads != 0) throw Error(m.path, "heads", "widths are not divisible by USE-Lite's 4 heads");
  out.config = {{"model_type", "use_lite"},
                {"architectures", {"UseLiteModel"}},
                {"vocab_size", V},
                {"embedding_size", E},
                {"hidden_size", H},
                {"num_hidden_layers", layers},
                {"num_attention_heads", heads},
                {"intermediate_size", I},
                {"hidden_act", "relu"},
                {"hidden_dropout_prob", 0.1},
                {"attention_probs_dropout_prob", 0.1},
                {"max_position_embeddings", 128},  // the graph keeps the first 128 ids of a text
                {"type_vocab_size", 0},
                {"layer_norm_eps", 1e-6},
                {"pad_token_id", 0},
                {"initializer_range", 0.02},
                {"source", "TF.js graph model " + m.path}};
  return out;
}

}  // namespace kotsu
