#include "kotsu/models/use_lite.hpp"

#include "kotsu/core/error.hpp"

namespace kotsu {

namespace {

// The one weight whose name contains `part` (the graph's names are long and unique by their tails).
torch::Tensor weight(const TfjsModel& m, const std::string& part) {
  const TfjsWeight* hit = nullptr;
  for (const auto& w : m.weights)
    if (w.name.find(part) != std::string::npos) {
      if (hit) throw Error(m.path, part, "matches more than one weight");
      hit = &w;
    }
  if (!hit || !hit->value.defined()) throw Error(m.path, part, "USE-Lite weight not found");
  return hit->value.to(torch::kFloat32).clone();
}

torch::Tensor layer_norm(const torch::Tensor& x, const torch::Tensor& scale, const torch::Tensor& bias) {
  auto mu = x.mean(-1, true);
  auto var = (x - mu).square().mean(-1, true);
  return (x - mu) * torch::rsqrt(var + 1e-6) * scale + bias;
}

}  // namespace

UseLiteEncoder::UseLiteEncoder(const TfjsModel& m) {
  const std::string K = "Encoder_en/KonaTransformer/Encode/";
  embeddings_ = register_parameter("embeddings", weight(m, "module/Embeddings_en"));
  inv_timescales_ = register_buffer("inv_timescales", weight(m, "AddTimingSignal/TimingSignal/ExpandDims_1").view({-1}));
  for (int l = 0; l < 2; ++l) {
    const std::string L = K + "Layer_" + std::to_string(l) + "/TransformerLayer/";
    const std::string S = "TransformerStack/Layer_" + std::to_string(l) + "/TransformerLayer/";
    const std::string p = "layer" + std::to_string(l) + "_";
    Layer y;
    y.ln1_scale = register_parameter(p + "ln1_scale", weight(m, L + "layer_prepostprocess/layer_norm/layer_norm_scale"));
    y.ln1_bias = register_parameter(p + "ln1_bias", weight(m, L + "layer_prepostprocess/layer_norm/layer_norm_bias"));
    auto qkv = weight(m, L + "MultiheadAttention/qkv_transform_single/kernel");
    y.qkv_w = register_parameter(p + "qkv_weight", qkv.view({qkv.size(2), qkv.size(3)}));
    y.qkv_b = register_parameter(p + "qkv_bias", weight(m, L + "MultiheadAttention/qkv_transform_single/bias"));
    auto out = weight(m, L + "MultiheadAttention/output_transform_single/kernel");
    y.out_w = register_parameter(p + "out_weight", out.view({out.size(2), out.size(3)}));
    y.out_b = register_parameter(p + "out_bias", weight(m, L + "MultiheadAttention/output_transform_single/bias"));
    if (l == 0) {
      y.res_w = register_parameter(p + "residual_weight", weight(m, L + "dense/kernel"));
      y.res_b = register_parameter(p + "residual_bias", weight(m, L + "dense/bias"));
    }
    y.ln2_scale = register_parameter(p + "ln2_scale", weight(m, L + "FFN/layer_prepostprocess/layer_norm/layer_norm_scale"));
    y.ln2_bias = register_parameter(p + "ln2_bias", weight(m, L + "FFN/layer_prepostprocess/layer_norm/layer_norm_bias"));
    y.ff1_w = register_parameter(p + "ff1_weight", weight(m, S + "FFN/conv1/Tensordot/Reshape_1"));
    y.ff1_b = register_parameter(p + "ff1_bias", weight(m, L + "FFN/conv1/bias"));
    y.ff2_w = register_parameter(p + "ff2_weight", weight(m, S + "FFN/conv2/Tensordot/Reshape_1"));
    y.ff2_b = register_parameter(p + "ff2_bias", weight(m, L + "FFN/conv2/bias"));
    layers_.push_back(std::move(y));
  }
  tanh_w_ = register_parameter("tanh_weight", weight(m, "hidden_layers/tanh_layer_0/weights"));
  tanh_b_ = register_parameter("tanh_bias", weight(m, "hidden_layers/tanh_layer_0/bias"));
}

torch::Tensor UseLiteEncoder::layer(const Layer& l, const torch::Tensor& x, const torch::Tensor& bias) {
  const int64_t B = x.size(0), T = x.size(1);
  auto qkv = torch::matmul(layer_norm(x, l.ln1_scale, l.ln1_bias), l.qkv_w) + l.qkv_b;
  const int64_t D = qkv.size(2) / 3, dh = D / l.heads;
  auto parts = qkv.split(D, 2);
  auto heads = [&](const torch::Tensor& t) { return t.reshape({B, T, l.heads, dh}).transpose(1, 2); };
  auto q = heads(parts[0]) * (1.0 / std::sqrt(static_cast<double>(dh))), k = heads(parts[1]), v = heads(parts[2]);
  auto att = torch::softmax(torch::matmul(q, k.transpose(-1, -2)) + bias, -1);
  auto o = torch::matmul(att, v).transpose(1, 2).reshape({B, T, D});
  auto residual = l.res_w.defined() ? torch::matmul(x, l.res_w) + l.res_b : x;
  auto h = residual + torch::matmul(o, l.out_w) + l.out_b;
  auto f = torch::relu(torch::matmul(layer_norm(h, l.ln2_scale, l.ln2_bias), l.ff1_w) + l.ff1_b);
  return h + torch::matmul(f, l.ff2_w) + l.ff2_b;
}

torch::Tensor UseLiteEncoder::forward(const std::vector<std::vector<int64_t>>& ids) {
  const int64_t B = static_cast<int64_t>(ids.size());
  int64_t T = 1;
  for (const auto& s : ids) T = std::max<int64_t>(T, std::min<int64_t>(kMaxTokens, static_cast<int64_t>(s.size())));
  auto tok = torch::zeros({B, T}, torch::kLong);
  auto mask = torch::zeros({B, T}, torch::kFloat32);
  for (int64_t b = 0; b < B; ++b) {
    const auto& s = ids[static_cast<size_t>(b)];
    for (int64_t t = 0; t < std::min<int64_t>(T, static_cast<int64_t>(s.size())); ++t) {
      if (s[static_cast<size_t>(t)] < 0 || s[static_cast<size_t>(t)] >= embeddings_.size(0))
        throw Error("<input>", "token id", std::to_string(s[static_cast<size_t>(t)]) + " is outside USE-Lite's vocabulary");
      tok[b][t] = s[static_cast<size_t>(t)];
      mask[b][t] = 1;
    }
  }
  auto pos = torch::arange(T, torch::kFloat32).unsqueeze(1) * inv_timescales_.unsqueeze(0);
  auto timing = torch::cat({torch::sin(pos), torch::cos(pos)}, 1);
  auto e = embeddings_.index_select(0, tok.view({-1})).view({B, T, -1});
  auto x = 2 * e + timing;  // as the graph computes it: embedding + (embedding + timing)
  auto bias = ((1 - mask) * -1e9).view({B, 1, 1, T});
  for (const auto& l : layers_) x = layer(l, x, bias);
  auto count = mask.sum(1, true).clamp_min(1);
  auto pooled = (x * mask.unsqueeze(2)).sum(1) / count;
  auto out = torch::tanh(torch::matmul(pooled, tanh_w_) + tanh_b_);
  return out / out.norm(2, 1, true).clamp_min(1e-6);
}

}  // namespace kotsu
