// kotsu/models/image_classifier: the one interface every image-classification architecture implements,
// the image twin of TextClassifier. features(pixels) is the backbone up to global pooling (what
// --strategy head computes once and caches), head(features) the classifier every strategy trains.
// pixels are [B, C, H, W] float, already normalised as the model's preprocessor_config.json says.
// Parameters carry their Hugging Face names, grouped "stem", "layer.0" .. "layer.N-1", "head".
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/types.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kotsu/io/image_config.hpp"
#include "kotsu/models/classifier.hpp"

namespace kotsu {

class ImageClassifier : public Classifier {
 public:
  // [B, feature_size()]. The backbone runs on channels-last activations (NHWC in memory; the shapes stay
  // [B, C, H, W]): oneDNN's CPU convolutions, batch norms and poolings are faster on them (ResNet-18's
  // training step: bench/vision_step and README). Parameters keep their usual
  // layout, so checkpoints, optimizer state and gradient all-reduce are unaffected.
  torch::Tensor features(const torch::Tensor& pixels) {
    return pooled_features(pixels.dim() == 4 ? pixels.contiguous(torch::MemoryFormat::ChannelsLast) : pixels);
  }
  torch::Tensor logits(const torch::Tensor& pixels) { return head(features(pixels)); }
  virtual int64_t feature_size() const = 0;
  virtual std::string base_prefix() const = 0;  // "mobilenet_v2."
  // Hugging Face's _init_weights: normal(0, initializer_range) conv/linear weights, zero biases,
  // batch norm scale 1 / shift 0 / running statistics reset.
  void init_head(uint64_t seed) override;
  void init_all(uint64_t seed) override;
  const ImageConfig& config() const { return config_; }
  // Called on every intermediate activation the architecture names (each conv layer's output by its
  // tensor-name prefix, each residual sum as "<block>.add", the pooled features as "<base>pool") and
  // replaced by what it returns; for emulating a quantized graph in tests and calibration. Empty: none.
  using ActivationHook = std::function<torch::Tensor(const std::string& where, const torch::Tensor& x)>;
  void set_activation_hook(ActivationHook hook) { *hook_ = std::move(hook); }

 protected:
  virtual torch::Tensor pooled_features(const torch::Tensor& pixels) = 0;  // what features() runs
  explicit ImageClassifier(ImageConfig config)
      : config_(std::move(config)), hook_(std::make_shared<ActivationHook>()) {}
  torch::Tensor hooked(const std::string& where, const torch::Tensor& x) const { return *hook_ ? (*hook_)(where, x) : x; }
  // The usual head: dropout (classifier_dropout_prob, training only) then the linear layer; a model
  // without one (a backbone) returns the features.
  torch::Tensor dropout_linear(torch::nn::Linear& classifier, const torch::Tensor& features);
  // param_groups() from the parameter names: `stem` prefix -> "stem", a layer_of(name) >= 0 -> "layer.N",
  // the rest -> "head".
  std::vector<ParamGroup> group_params(const std::string& stem, const std::function<int64_t(const std::string&)>& layer_of);
  ImageConfig config_;
  std::shared_ptr<ActivationHook> hook_;  // shared with the layers
};

// Builds the architecture config.model_type names with `num_labels` outputs (0: no head).
std::shared_ptr<ImageClassifier> make_image_classifier(const ImageConfig& config, int64_t num_labels);

// Copies the checkpoint's tensors into `model` by name; a missing backbone tensor or a shape mismatch
// outside the head is a kotsu::Error naming the tensor and `path`; a missing or differently-sized head
// (or any head when fresh_head) is initialised afresh with `seed` and reported.
LoadReport load_image_weights(ImageClassifier& model, const std::map<std::string, torch::Tensor>& tensors,
                              const std::string& path, uint64_t seed, bool fresh_head = false);

}  // namespace kotsu
