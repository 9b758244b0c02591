// kotsu/models/distilbert: DistilBERT with a sequence-classification head, module for module as Hugging
// Face's modeling_distilbert.py: distilbert.embeddings.{word,position}_embeddings + LayerNorm (no token
// types), distilbert.transformer.layer.N.{attention.{q,k,v,out}_lin, sa_layer_norm, ffn.lin1/lin2,
// output_layer_norm}; head pre_classifier -> ReLU -> dropout -> classifier on the first token.
// features() is the first token's hidden state (config pooling "mean": mean_pooled); the head owns pre_classifier.
#pragma once
#include <torch/nn/modules/linear.h>

#include "kotsu/io/hf_config.hpp"
#include "kotsu/models/text_classifier.hpp"

namespace kotsu {

struct DistilEmbeddingsImpl;
struct DistilLayerImpl;

class DistilBertClassifier : public TextClassifier {
 public:
  DistilBertClassifier(const EncoderConfig& config, int64_t num_labels);
  torch::Tensor features(const TextBatch& batch) override;
  torch::Tensor head(const torch::Tensor& features) override;
  torch::Tensor encode(const TextBatch& batch) override;
  std::vector<ParamGroup> param_groups() override;
  int64_t num_layers() const override { return config_.num_hidden_layers; }
  int64_t num_labels() const override { return num_labels_; }
  int64_t max_positions() const override { return config_.max_position_embeddings; }
  std::string base_prefix() const override { return "distilbert."; }
  void init_head(uint64_t seed) override;
  void init_all(uint64_t seed) override;
  std::vector<torch::Tensor> use_sparse_embedding_grads() override;

 private:
  EncoderConfig config_;
  int64_t num_labels_;
  std::shared_ptr<DistilEmbeddingsImpl> embeddings_;
  std::vector<std::shared_ptr<DistilLayerImpl>> layers_;
  torch::nn::Linear pre_classifier_{nullptr}, classifier_{nullptr};
};

}  // namespace kotsu
