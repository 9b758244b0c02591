#include "kotsu/models/llama.hpp"

#include <torch/torch.h>

#include <cmath>

#include "kotsu/core/error.hpp"
#include "kotsu/models/dense.hpp"
#include "kotsu/models/ops.hpp"

namespace kotsu {

namespace {

// LlamaRMSNorm: computed in float32 (float64 stays float64), scaled by the weight in the input's dtype.
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  const auto t = x.scalar_type() == torch::kDouble ? x : x.to(torch::kFloat);
  const auto y = t * torch::rsqrt(t.pow(2).mean(-1, true) + eps);
  return weight * y.to(x.scalar_type());
}

// rotate_half: (x1, x2) -> (-x2, x1) over the two halves of the last dimension.
torch::Tensor rotate_half(const torch::Tensor& x) {
  const int64_t h = x.size(-1) / 2;
  return torch::cat({-x.slice(-1, h), x.slice(-1, 0, h)}, -1);
}

// modeling_rope_utils: the default inverse frequencies, then linear (all divided by the factor) or llama3
// (long wavelengths divided, short ones kept, a smooth ramp between) scaling.
torch::Tensor rope_inv_freq(const CausalLmConfig& c) {
  const int64_t dim = c.head_dim();
  auto inv = 1.0 / torch::pow(c.rope_theta, torch::arange(0, dim, 2, torch::kDouble) / static_cast<double>(dim));
  if (c.rope_type == "linear") return inv / c.rope_factor;
  if (c.rope_type != "llama3") return inv;
  const double old_len = static_cast<double>(c.rope_original_max_positions);
  const double low_wavelen = old_len / c.rope_low_freq_factor, high_wavelen = old_len / c.rope_high_freq_factor;
  const auto wavelen = 2 * M_PI / inv;
  auto scaled = torch::where(wavelen > low_wavelen, inv / c.rope_factor, inv);
  const auto smooth = (old_len / wavelen - c.rope_low_freq_factor) / (c.rope_high_freq_factor - c.rope_low_freq_factor);
  const auto smoothed = (1 - smooth) * scaled / c.rope_factor + smooth * scaled;
  const auto medium = wavelen.ge(high_wavelen).logical_and(wavelen.le(low_wavelen));
  return torch::where(medium, smoothed, scaled);
}

Dense linear(int64_t in, int64_t out, bool bias) { return Dense(in, out, bias); }

}  // namespace

struct LlamaLayerImpl : torch::nn::Module {
  Dense q{nullptr}, k{nullptr}, v{nullptr}, o{nullptr}, gate{nullptr}, up{nullptr}, down{nullptr};
  torch::Tensor input_norm, post_norm;
  int64_t heads, kv_heads, hd;
  double eps, attn_dropout;

  explicit LlamaLayerImpl(const CausalLmConfig& c)
      : heads(c.num_heads), kv_heads(c.num_kv_heads), hd(c.head_dim()), eps(c.norm_eps), attn_dropout(c.attn_dropout) {
    auto attn = register_module("self_attn", std::make_shared<torch::nn::Module>());
    q = attn->register_module("q_proj", linear(c.hidden_size, heads * hd, c.attention_bias));
    k = attn->register_module("k_proj", linear(c.hidden_size, kv_heads * hd, c.attention_bias));
    v = attn->register_module("v_proj", linear(c.hidden_size, kv_heads * hd, c.attention_bias));
    o = attn->register_module("o_proj", linear(heads * hd, c.hidden_size, c.attention_bias && c.model_type == "llama"));
    auto mlp = register_module("mlp", std::make_shared<torch::nn::Module>());
    gate = mlp->register_module("gate_proj", linear(c.hidden_size, c.intermediate_size, c.mlp_bias));
    up = mlp->register_module("up_proj", linear(c.hidden_size, c.intermediate_size, c.mlp_bias));
    down = mlp->register_module("down_proj", linear(c.intermediate_size, c.hidden_size, c.mlp_bias));
    input_norm = register_module("input_layernorm", std::make_shared<torch::nn::Module>())->register_parameter("weight", torch::ones({c.hidden_size}));
    post_norm = register_module("post_attention_layernorm", std::make_shared<torch::nn::Module>())->register_parameter("weight", torch::ones({c.hidden_size}));
  }

  // x [B, T, H]; cos/sin [B or 1, 1, T, hd]; allowed [B or 1, 1, T, past + T].
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin, const torch::Tensor& allowed,
                        torch::Tensor* k_cache, torch::Tensor* v_cache) {
    const int64_t B = x.size(0), T = x.size(1);
    const auto h = rms_norm(x, input_norm, eps);
    auto qs = q(h).view({B, T, heads, hd}).transpose(1, 2);
    auto ks = k(h).view({B, T, kv_heads, hd}).transpose(1, 2);
    auto vs = v(h).view({B, T, kv_heads, hd}).transpose(1, 2);
    qs = qs * cos + rotate_half(qs) * sin;
    ks = ks * cos + rotate_half(ks) * sin;
    if (k_cache) {
      if (k_cache->defined()) {
        ks = torch::cat({*k_cache, ks}, 2);
        vs = torch::cat({*v_cache, vs}, 2);
      }
      *k_cache = ks;
      *v_cache = vs;
    }
    if (kv_heads != heads) {  // repeat_kv: each key/value head serves heads / kv_heads query heads
      ks = ks.repeat_interleave(heads / kv_heads, 1);
      vs = vs.repeat_interleave(heads / kv_heads, 1);
    }
    auto scores = torch::matmul(qs, ks.transpose(2, 3)) * (1.0 / std::sqrt(static_cast<double>(hd)));
    scores = scores.masked_fill(allowed.logical_not(), lowest_value(scores.scalar_type()));
    const auto probs_dtype = scores.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
    auto probs = kotsu::dropout(torch::softmax(scores.to(probs_dtype), -1).to(qs.scalar_type()), attn_dropout, is_training());
    auto a = o(torch::matmul(probs, vs).transpose(1, 2).reshape({B, T, heads * hd}));
    const auto r = x + a;
    const auto m = rms_norm(r, post_norm, eps);
    return r + down(torch::silu(gate(m)) * up(m));
  }
};

Llama::Llama(const CausalLmConfig& c) : config_(c) {
  auto model = register_module("model", std::make_shared<torch::nn::Module>());
  embed_ = model->register_module("embed_tokens", torch::nn::Embedding(c.vocab_size, c.hidden_size))->weight;
  auto layers = model->register_module("layers", std::make_shared<torch::nn::Module>());
  for (int64_t i = 0; i < c.num_layers; ++i) layers_.push_back(layers->register_module(std::to_string(i), std::make_shared<LlamaLayerImpl>(c)));
  norm_ = model->register_module("norm", std::make_shared<torch::nn::Module>())->register_parameter("weight", torch::ones({c.hidden_size}));
  if (!c.tie_word_embeddings) lm_head_ = register_module("lm_head", std::make_shared<torch::nn::Module>())->register_parameter("weight", torch::empty({c.vocab_size, c.hidden_size}));
  inv_freq_ = rope_inv_freq(c);
  torch::NoGradGuard ng;
  for (auto& p : named_parameters(true))
    if (p.key().find("norm") == std::string::npos) p.value().normal_(0.0, c.initializer_range);  // loaded over
}

torch::Tensor Llama::logits(const torch::Tensor& ids, KvCache* cache, const torch::Tensor& mask, const torch::Tensor& positions) {
  const int64_t B = ids.size(0), T = ids.size(1), past = cache ? cache->length() : 0;
  if (past + T > config_.max_positions)
    throw Error(config_.model_type, "max_position_embeddings",
                "sequence of " + std::to_string(past + T) + " tokens exceeds the model's " + std::to_string(config_.max_positions));
  auto x = torch::embedding(embed_, ids);
  // rotary angles in float32 as Hugging Face computes them (float64 for a float64 model), then the model's dtype
  const auto angle_dtype = x.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
  const auto pos = (positions.defined() ? positions : torch::arange(past, past + T, ids.options()).unsqueeze(0).expand({B, T})).to(angle_dtype);
  const auto freqs = pos.unsqueeze(-1) * inv_freq_.to(ids.device()).to(angle_dtype).view({1, 1, -1});
  const auto emb = torch::cat({freqs, freqs}, -1).unsqueeze(1);  // [B, 1, T, hd]
  const auto cos = emb.cos().to(x.scalar_type()), sin = emb.sin().to(x.scalar_type());
  const auto allowed = causal_allowed(past, T, mask, ids.device());
  if (cache && cache->k.empty()) cache->k.resize(layers_.size()), cache->v.resize(layers_.size());
  for (size_t i = 0; i < layers_.size(); ++i) x = layers_[i]->forward(x, cos, sin, allowed, cache ? &cache->k[i] : nullptr, cache ? &cache->v[i] : nullptr);
  return torch::linear(rms_norm(x, norm_, config_.norm_eps), lm_head_.defined() ? lm_head_ : embed_);
}

std::vector<ParamGroup> Llama::param_groups() { return decoder_param_groups(*this, config_.num_layers, "model.layers.", {"model.embed_tokens."}); }

}  // namespace kotsu
