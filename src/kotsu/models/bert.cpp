#include "kotsu/models/bert.hpp"
#include "kotsu/models/dense.hpp"
#include "kotsu/models/ops.hpp"

#include <torch/torch.h>

#include <cmath>

namespace kotsu {

namespace {

torch::nn::LayerNorm layer_norm(const EncoderConfig& c) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.hidden_size}).eps(c.layer_norm_eps));
}

}  // namespace

struct BertEmbeddingsImpl : torch::nn::Module {
  torch::nn::Embedding word_embeddings{nullptr}, position_embeddings{nullptr}, token_type_embeddings{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};
  double dropout;
  bool roberta;
  int64_t pad;

  BertEmbeddingsImpl(const EncoderConfig& c, bool is_roberta) : dropout(c.hidden_dropout_prob), roberta(is_roberta), pad(c.pad_token_id) {
    word_embeddings = register_module("word_embeddings",
        torch::nn::Embedding(torch::nn::EmbeddingOptions(c.vocab_size, c.hidden_size).padding_idx(c.pad_token_id)));
    auto pos = torch::nn::EmbeddingOptions(c.max_position_embeddings, c.hidden_size);
    if (roberta) pos.padding_idx(c.pad_token_id);
    position_embeddings = register_module("position_embeddings", torch::nn::Embedding(pos));
    if (c.type_vocab_size > 0)
      token_type_embeddings = register_module("token_type_embeddings",
          torch::nn::Embedding(torch::nn::EmbeddingOptions(c.type_vocab_size, c.hidden_size)));
    LayerNorm = register_module("LayerNorm", layer_norm(c));
  }

  torch::Tensor forward(const TextBatch& b) {
    const auto& ids = b.input_ids;
    torch::Tensor pos_ids;
    if (roberta) {
      // create_position_ids_from_input_ids: padding_idx + cumulative count of non-pad tokens
      auto mask = ids.ne(pad).to(torch::kLong);
      pos_ids = torch::cumsum(mask, 1) * mask + pad;
    } else {
      pos_ids = torch::arange(ids.size(1), ids.options()).unsqueeze(0);
    }
    auto x = word_embeddings(ids) + position_embeddings(pos_ids);
    if (token_type_embeddings) {
      auto tt = b.token_type_ids.defined() ? b.token_type_ids : torch::zeros_like(ids);
      x = x + token_type_embeddings(tt);
    }
    x = LayerNorm(x);
    return kotsu::dropout(x, dropout, is_training());
  }
};

// BertSelfAttention + BertSelfOutput + BertIntermediate + BertOutput, with Hugging Face's submodule names.
struct BertLayerImpl : torch::nn::Module {
  Dense query{nullptr}, key{nullptr}, value{nullptr}, attn_out{nullptr}, inter{nullptr}, out{nullptr};
  torch::nn::LayerNorm attn_norm{nullptr}, out_norm{nullptr};
  int64_t heads;
  double hidden_dropout, attn_dropout;
  std::string act;

  explicit BertLayerImpl(const EncoderConfig& c)
      : heads(c.num_attention_heads),
        hidden_dropout(c.hidden_dropout_prob), attn_dropout(c.attention_probs_dropout_prob), act(c.hidden_act) {
    auto attention = register_module("attention", std::make_shared<torch::nn::Module>());
    auto self = attention->register_module("self", std::make_shared<torch::nn::Module>());
    query = self->register_module("query", Dense(c.hidden_size, c.hidden_size, true));
    key = self->register_module("key", Dense(c.hidden_size, c.hidden_size, true));
    value = self->register_module("value", Dense(c.hidden_size, c.hidden_size, true));
    auto self_out = attention->register_module("output", std::make_shared<torch::nn::Module>());
    attn_out = self_out->register_module("dense", Dense(c.hidden_size, c.hidden_size, true));
    attn_norm = self_out->register_module("LayerNorm", layer_norm(c));
    auto intermediate = register_module("intermediate", std::make_shared<torch::nn::Module>());
    inter = intermediate->register_module("dense", Dense(c.hidden_size, c.intermediate_size, true));
    auto output = register_module("output", std::make_shared<torch::nn::Module>());
    out = output->register_module("dense", Dense(c.intermediate_size, c.hidden_size, true));
    out_norm = output->register_module("LayerNorm", layer_norm(c));
  }

  // x [B, T, H]; mask_bias [B, 1, 1, T] (0 for tokens, dtype-min for padding)
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask_bias) {
    auto ctx = attention(query(x), key(x), value(x), mask_bias, heads, attn_dropout, is_training());
    auto a = attn_norm(kotsu::dropout(attn_out(ctx), hidden_dropout, is_training()) + x);
    auto i = activation(inter(a), act);
    return out_norm(kotsu::dropout(out(i), hidden_dropout, is_training()) + a);
  }
};

BertClassifier::BertClassifier(const EncoderConfig& config, int64_t num_labels)
    : config_(config), num_labels_(num_labels), roberta_(config.model_type == "roberta") {
  base_ = register_module(roberta_ ? "roberta" : "bert", std::make_shared<torch::nn::Module>());
  embeddings_ = base_->register_module("embeddings", std::make_shared<BertEmbeddingsImpl>(config, roberta_));
  auto encoder = base_->register_module("encoder", std::make_shared<torch::nn::Module>());
  auto layer_list = encoder->register_module("layer", std::make_shared<torch::nn::Module>());
  for (int64_t i = 0; i < config.num_hidden_layers; ++i)
    layers_.push_back(layer_list->register_module(std::to_string(i), std::make_shared<BertLayerImpl>(config)));
  if (roberta_) {
    auto cls = register_module("classifier", std::make_shared<torch::nn::Module>());
    head_dense_ = cls->register_module("dense", torch::nn::Linear(config.hidden_size, config.hidden_size));
    classifier_ = cls->register_module("out_proj", torch::nn::Linear(config.hidden_size, num_labels));
  } else {
    auto pooler = base_->register_module("pooler", std::make_shared<torch::nn::Module>());
    pooler_ = pooler->register_module("dense", torch::nn::Linear(config.hidden_size, config.hidden_size));
    classifier_ = register_module("classifier", torch::nn::Linear(config.hidden_size, num_labels));
  }
}

int64_t BertClassifier::max_positions() const {
  // RoBERTa positions start after padding_idx, so two fewer tokens fit
  return roberta_ ? config_.max_position_embeddings - config_.pad_token_id - 1 : config_.max_position_embeddings;
}

torch::Tensor BertClassifier::encode(const TextBatch& batch) {
  auto x = embeddings_->forward(batch);
  auto mask_bias = attention_mask_bias(batch.attention_mask, x.scalar_type());
  for (auto& layer : layers_) x = layer->forward(x, mask_bias);
  return x;
}

torch::Tensor BertClassifier::features(const TextBatch& batch) {
  auto h = encode(batch);
  if (config_.pooling == "mean") return mean_pooled(h, batch.attention_mask);
  auto first = h.select(1, 0);
  if (roberta_) return first;
  return torch::tanh(pooler_(first));
}

torch::Tensor BertClassifier::head(const torch::Tensor& f) {
  const double p = config_.head_dropout();
  auto x = kotsu::dropout(f, p, is_training());
  if (roberta_) {
    x = torch::tanh(head_dense_(x));
    x = kotsu::dropout(x, p, is_training());
  }
  return classifier_(x);
}

std::vector<ParamGroup> BertClassifier::param_groups() {
  const std::string pre = base_prefix();
  return group_by_prefix(pre + "embeddings.", pre + "encoder.layer.", roberta_ ? "" : pre + "pooler.");
}

std::vector<torch::Tensor> BertClassifier::use_sparse_embedding_grads() {
  embeddings_->word_embeddings->options.sparse(true);
  return {embeddings_->word_embeddings->weight};
}

void BertClassifier::init_head(uint64_t seed) { init_head_like_hf(config_.initializer_range, seed); }

void BertClassifier::init_all(uint64_t seed) {
  init_all_like_hf(config_.initializer_range, seed);
  // padding rows stay zero, as Hugging Face's _init_weights leaves them
  torch::NoGradGuard ng;
  embeddings_->word_embeddings->weight.select(0, config_.pad_token_id).zero_();
  if (roberta_) embeddings_->position_embeddings->weight.select(0, config_.pad_token_id).zero_();
}

}  // namespace kotsu
