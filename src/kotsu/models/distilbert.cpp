#include "kotsu/models/distilbert.hpp"

#include <torch/torch.h>

#include "kotsu/models/dense.hpp"
#include "kotsu/models/ops.hpp"

namespace kotsu {

struct DistilEmbeddingsImpl : torch::nn::Module {
  torch::nn::Embedding word_embeddings{nullptr}, position_embeddings{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};
  double p;
  explicit DistilEmbeddingsImpl(const EncoderConfig& c) : p(c.hidden_dropout_prob) {
    word_embeddings = register_module("word_embeddings",
        torch::nn::Embedding(torch::nn::EmbeddingOptions(c.vocab_size, c.hidden_size).padding_idx(c.pad_token_id)));
    position_embeddings = register_module("position_embeddings",
        torch::nn::Embedding(torch::nn::EmbeddingOptions(c.max_position_embeddings, c.hidden_size)));
    LayerNorm = register_module("LayerNorm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.hidden_size}).eps(1e-12)));
  }
  torch::Tensor forward(const torch::Tensor& ids) {
    auto pos = torch::arange(ids.size(1), ids.options()).unsqueeze(0);
    return kotsu::dropout(LayerNorm(word_embeddings(ids) + position_embeddings(pos)), p, is_training());
  }
};

struct DistilLayerImpl : torch::nn::Module {
  Dense q_lin{nullptr}, k_lin{nullptr}, v_lin{nullptr}, out_lin{nullptr}, lin1{nullptr}, lin2{nullptr};
  torch::nn::LayerNorm sa_layer_norm{nullptr}, output_layer_norm{nullptr};
  int64_t heads;
  double p, attn_p;
  std::string act;
  explicit DistilLayerImpl(const EncoderConfig& c)
      : heads(c.num_attention_heads), p(c.hidden_dropout_prob), attn_p(c.attention_probs_dropout_prob), act(c.hidden_act) {
    const int64_t H = c.hidden_size;
    auto attn = register_module("attention", std::make_shared<torch::nn::Module>());
    q_lin = attn->register_module("q_lin", Dense(H, H, true));
    k_lin = attn->register_module("k_lin", Dense(H, H, true));
    v_lin = attn->register_module("v_lin", Dense(H, H, true));
    out_lin = attn->register_module("out_lin", Dense(H, H, true));
    sa_layer_norm = register_module("sa_layer_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({H}).eps(1e-12)));
    auto ffn = register_module("ffn", std::make_shared<torch::nn::Module>());
    lin1 = ffn->register_module("lin1", Dense(H, c.intermediate_size, true));
    lin2 = ffn->register_module("lin2", Dense(c.intermediate_size, H, true));
    output_layer_norm = register_module("output_layer_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({H}).eps(1e-12)));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask_bias) {
    auto ctx = attention(q_lin(x), k_lin(x), v_lin(x), mask_bias, heads, attn_p, is_training());
    auto sa = sa_layer_norm(out_lin(ctx) + x);
    auto ff = kotsu::dropout(lin2(activation(lin1(sa), act)), p, is_training());
    return output_layer_norm(ff + sa);
  }
};

DistilBertClassifier::DistilBertClassifier(const EncoderConfig& config, int64_t num_labels)
    : config_(config), num_labels_(num_labels) {
  auto base = register_module("distilbert", std::make_shared<torch::nn::Module>());
  embeddings_ = base->register_module("embeddings", std::make_shared<DistilEmbeddingsImpl>(config));
  auto transformer = base->register_module("transformer", std::make_shared<torch::nn::Module>());
  auto list = transformer->register_module("layer", std::make_shared<torch::nn::Module>());
  for (int64_t i = 0; i < config.num_hidden_layers; ++i)
    layers_.push_back(list->register_module(std::to_string(i), std::make_shared<DistilLayerImpl>(config)));
  pre_classifier_ = register_module("pre_classifier", torch::nn::Linear(config.hidden_size, config.hidden_size));
  classifier_ = register_module("classifier", torch::nn::Linear(config.hidden_size, num_labels));
}

torch::Tensor DistilBertClassifier::encode(const TextBatch& batch) {
  auto x = embeddings_->forward(batch.input_ids);
  auto bias = attention_mask_bias(batch.attention_mask, x.scalar_type());
  for (auto& l : layers_) x = l->forward(x, bias);
  return x;
}

torch::Tensor DistilBertClassifier::features(const TextBatch& batch) {
  auto h = encode(batch);
  return config_.pooling == "mean" ? mean_pooled(h, batch.attention_mask) : h.select(1, 0);
}

torch::Tensor DistilBertClassifier::head(const torch::Tensor& f) {
  auto x = torch::relu(pre_classifier_(f));
  return classifier_(kotsu::dropout(x, config_.head_dropout(), is_training()));
}

std::vector<ParamGroup> DistilBertClassifier::param_groups() {
  return group_by_prefix("distilbert.embeddings.", "distilbert.transformer.layer.", "");
}

void DistilBertClassifier::init_head(uint64_t seed) { init_head_like_hf(config_.initializer_range, seed); }

void DistilBertClassifier::init_all(uint64_t seed) {
  init_all_like_hf(config_.initializer_range, seed);
  torch::NoGradGuard ng;
  embeddings_->word_embeddings->weight.select(0, config_.pad_token_id).zero_();
}

std::vector<torch::Tensor> DistilBertClassifier::use_sparse_embedding_grads() {
  embeddings_->word_embeddings->options.sparse(true);
  return {embeddings_->word_embeddings->weight};
}

}  // namespace kotsu
