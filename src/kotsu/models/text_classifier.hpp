// kotsu/models/text_classifier: the one interface every text-classification architecture implements.
// A model is split into features(batch) (the encoder: what --strategy head computes once and caches) and
// head(features) (what every strategy trains). Parameters carry their Hugging Face names, grouped bottom
// to top ("embeddings", "layer.0" .. "layer.N-1", "pooler", "head") so freezing and discriminative
// learning rates work the same for every architecture.
#pragma once
#include <torch/nn/module.h>
#include <torch/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kotsu/core/batch.hpp"
#include "kotsu/models/classifier.hpp"

namespace kotsu {

class TextClassifier : public Classifier {
 public:
  virtual torch::Tensor encode(const TextBatch& batch) = 0;             // last hidden states [B, T, H]
  virtual torch::Tensor features(const TextBatch& batch) = 0;           // [B, F]
  torch::Tensor logits(const TextBatch& batch) { return head(features(batch)); }
  virtual int64_t max_positions() const = 0;
  virtual std::string base_prefix() const = 0;  // "bert." or "roberta."
  // Switches the token-embedding table to sparse gradients (only the rows a batch uses) and returns it;
  // an architecture without one returns nothing.
  virtual std::vector<torch::Tensor> use_sparse_embedding_grads() { return {}; }

 protected:
  // param_groups() for the usual layout: names starting with `embeddings` -> "embeddings", `layers` + "N." ->
  // "layer.N" (N < num_layers), `pooler` (if not empty) -> "pooler", everything else -> "head".
  std::vector<ParamGroup> group_by_prefix(const std::string& embeddings, const std::string& layers, const std::string& pooler);
  // init_head()/init_all() as Hugging Face's _init_weights: normal(0, range) weights, zero biases, unit norm scales.
  void init_head_like_hf(double range, uint64_t seed);
  void init_all_like_hf(double range, uint64_t seed);
};


// A sentence embedding as sentence-transformers' Pooling(mean) + Normalize compute it: the mean of the hidden
// states [B, T, H] over the tokens whose attention mask is 1, divided by its L2 norm (at least 1e-12).
torch::Tensor mean_pooled(const torch::Tensor& hidden, const torch::Tensor& attention_mask);

// Copies the checkpoint's tensors into `model` by name (accepting base-model names without the
// "bert."/"roberta." prefix and old LayerNorm gamma/beta names); a missing encoder tensor or a shape
// mismatch outside the head is a kotsu::Error naming the tensor; a missing or mismatched head is
// initialised afresh with `seed` and reported.
// Hugging Face's _init_weights for these encoders: normal(0, range) weights, zero biases, unit norm scales.
void init_like_hf(const std::vector<std::pair<std::string, torch::Tensor>>& params, double range, uint64_t seed);

// With fresh_head the checkpoint's head is ignored (its classes differ from the new labels).
LoadReport load_weights(TextClassifier& model, const std::map<std::string, torch::Tensor>& tensors,
                        const std::string& path, uint64_t seed, bool fresh_head = false);

}  // namespace kotsu
