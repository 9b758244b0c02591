// kotsu/models/bert: BERT and RoBERTa encoders with a sequence-classification head, module for module
// as Hugging Face's modeling_bert.py / modeling_roberta.py (eager attention), so tensor names are the
// Hugging Face ones: bert.embeddings.word_embeddings.weight, bert.encoder.layer.0.attention.self.query.weight,
// ..., bert.pooler.dense.weight, classifier.weight (RoBERTa: roberta.*, classifier.dense/out_proj).
// features(): BERT = pooler output tanh(W h_[CLS]); RoBERTa = h_<s> (its head owns dense+tanh); with config pooling
// "mean" both take the L2-normalised mean of the real tokens' states (mean_pooled) and BERT's pooler is unused.
#pragma once
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include "kotsu/io/hf_config.hpp"
#include "kotsu/models/text_classifier.hpp"

namespace kotsu {

struct BertEmbeddingsImpl;
struct BertLayerImpl;

class BertClassifier : public TextClassifier {
 public:
  BertClassifier(const EncoderConfig& config, int64_t num_labels);

  torch::Tensor features(const TextBatch& batch) override;
  torch::Tensor head(const torch::Tensor& features) override;
  // Last hidden states [B, T, H] (for tests and feature extraction).
  torch::Tensor encode(const TextBatch& batch) override;
  std::vector<ParamGroup> param_groups() override;
  int64_t num_layers() const override { return config_.num_hidden_layers; }
  int64_t num_labels() const override { return num_labels_; }
  int64_t max_positions() const override;
  std::string base_prefix() const override { return roberta_ ? "roberta." : "bert."; }
  void init_head(uint64_t seed) override;
  void init_all(uint64_t seed) override;
  std::vector<torch::Tensor> use_sparse_embedding_grads() override;
  const EncoderConfig& config() const { return config_; }

 private:
  EncoderConfig config_;
  int64_t num_labels_;
  bool roberta_;
  std::shared_ptr<torch::nn::Module> base_;
  std::shared_ptr<BertEmbeddingsImpl> embeddings_;
  std::vector<std::shared_ptr<BertLayerImpl>> layers_;
  torch::nn::Linear pooler_{nullptr};      // BERT only
  torch::nn::Linear classifier_{nullptr};  // BERT: classifier; RoBERTa: classifier.out_proj
  torch::nn::Linear head_dense_{nullptr};  // RoBERTa: classifier.dense
};

}  // namespace kotsu
