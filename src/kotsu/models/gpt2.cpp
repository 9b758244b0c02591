#include "kotsu/models/gpt2.hpp"

#include <torch/torch.h>

#include <cmath>

#include "kotsu/core/error.hpp"
#include "kotsu/models/dense.hpp"
#include "kotsu/models/ops.hpp"

namespace kotsu {


struct Gpt2BlockImpl : torch::nn::Module {
  torch::nn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
  // GPT-2's Conv1D layers: y = x W + b with W stored [in, out]
  Dense c_attn{nullptr}, attn_proj{nullptr}, c_fc{nullptr}, mlp_proj{nullptr};
  int64_t heads;
  double attn_dropout, resid_dropout;
  std::string act;

  explicit Gpt2BlockImpl(const CausalLmConfig& c)
      : heads(c.num_heads), attn_dropout(c.attn_dropout), resid_dropout(c.resid_dropout), act(c.activation) {
    const auto norm = torch::nn::LayerNormOptions({c.hidden_size}).eps(c.norm_eps);
    ln_1 = register_module("ln_1", torch::nn::LayerNorm(norm));
    auto attn = register_module("attn", std::make_shared<torch::nn::Module>());
    c_attn = attn->register_module("c_attn", Dense(c.hidden_size, 3 * c.hidden_size, true, true));
    attn_proj = attn->register_module("c_proj", Dense(c.hidden_size, c.hidden_size, true, true));
    ln_2 = register_module("ln_2", torch::nn::LayerNorm(norm));
    auto mlp = register_module("mlp", std::make_shared<torch::nn::Module>());
    c_fc = mlp->register_module("c_fc", Dense(c.hidden_size, c.intermediate_size, true, true));
    mlp_proj = mlp->register_module("c_proj", Dense(c.intermediate_size, c.hidden_size, true, true));
  }

  // x [B, T, H]; allowed [B or 1, 1, T, T_past + T]: which keys each query may see.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& allowed, torch::Tensor* k_cache, torch::Tensor* v_cache) {
    const int64_t B = x.size(0), T = x.size(1), H = x.size(2), d = H / heads;
    auto qkv = c_attn(ln_1(x)).split(H, -1);
    auto split = [&](const torch::Tensor& t) { return t.view({B, T, heads, d}).transpose(1, 2); };
    torch::Tensor q = split(qkv[0]), k = split(qkv[1]), v = split(qkv[2]);
    if (k_cache) {
      if (k_cache->defined()) {
        k = torch::cat({*k_cache, k}, 2);
        v = torch::cat({*v_cache, v}, 2);
      }
      *k_cache = k;
      *v_cache = v;
    }
    // as modeling_gpt2's eager _attn: scores / sqrt(d), masked to the dtype's lowest value, softmax
    auto scores = torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(d));
    scores = scores.masked_fill(allowed.logical_not(), lowest_value(scores.scalar_type()));
    auto probs = kotsu::dropout(torch::softmax(scores, -1), attn_dropout, is_training());
    auto a = torch::matmul(probs, v).transpose(1, 2).reshape({B, T, H});
    auto h = x + kotsu::dropout(attn_proj(a), resid_dropout, is_training());
    auto m = mlp_proj(activation(c_fc(ln_2(h)), act));
    return h + kotsu::dropout(m, resid_dropout, is_training());
  }
};

Gpt2::Gpt2(const CausalLmConfig& c) : config_(c) {
  transformer_ = register_module("transformer", std::make_shared<torch::nn::Module>());
  auto wte = transformer_->register_module("wte", torch::nn::Embedding(c.vocab_size, c.hidden_size));
  auto wpe = transformer_->register_module("wpe", torch::nn::Embedding(c.max_positions, c.hidden_size));
  wte_ = wte->weight;
  wpe_ = wpe->weight;
  auto h = transformer_->register_module("h", std::make_shared<torch::nn::Module>());
  for (int64_t i = 0; i < c.num_layers; ++i) blocks_.push_back(h->register_module(std::to_string(i), std::make_shared<Gpt2BlockImpl>(c)));
  auto ln_f = transformer_->register_module("ln_f", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.hidden_size}).eps(c.norm_eps)));
  ln_f_w_ = ln_f->weight;
  ln_f_b_ = ln_f->bias;
  if (!c.tie_word_embeddings) {
    auto head = register_module("lm_head", std::make_shared<torch::nn::Module>());
    lm_head_ = head->register_parameter("weight", torch::empty({c.vocab_size, c.hidden_size}));
  }
  torch::NoGradGuard ng;
  for (auto& p : parameters()) p.normal_(0.0, c.initializer_range);  // weights are loaded over this
}

torch::Tensor Gpt2::logits(const torch::Tensor& ids, KvCache* cache, const torch::Tensor& mask, const torch::Tensor& positions) {
  const int64_t T = ids.size(1), past = cache ? cache->length() : 0;
  if (past + T > config_.max_positions)
    throw Error("gpt2", "n_positions", "sequence of " + std::to_string(past + T) + " tokens exceeds the model's " + std::to_string(config_.max_positions));
  torch::Tensor pos = positions.defined() ? positions : torch::arange(past, past + T, ids.options()).unsqueeze(0);
  auto x = kotsu::dropout(torch::embedding(wte_, ids) + torch::embedding(wpe_, pos), config_.embd_dropout, is_training());
  const torch::Tensor allowed = causal_allowed(past, T, mask, ids.device());
  if (cache && cache->k.empty()) cache->k.resize(blocks_.size()), cache->v.resize(blocks_.size());
  for (size_t i = 0; i < blocks_.size(); ++i)
    x = blocks_[i]->forward(x, allowed, cache ? &cache->k[i] : nullptr, cache ? &cache->v[i] : nullptr);
  return torch::linear(torch::layer_norm(x, {config_.hidden_size}, ln_f_w_, ln_f_b_, config_.norm_eps), lm_head_.defined() ? lm_head_ : wte_);
}

std::vector<ParamGroup> Gpt2::param_groups() { return decoder_param_groups(*this, config_.num_layers, "transformer.h.", {"transformer.wte.", "transformer.wpe."}); }

}  // namespace kotsu
