// kotsu/models/darknet: Darknet-style classifiers (the Darknet Reference / Tiny ImageNet models): a plain
// stack of conv + batch norm + leaky ReLU layers with 2x2 max pools between some of them, then a 1x1
// conv to the classes and a global average pool. Since a 1x1 conv commutes with the average pool, the
// head here is the pool then a linear layer (the same numbers, and a head that any strategy can train):
// features() = global average pool of the last conv layer. Hugging Face has no Darknet classifier, so
// the names follow its conventions: darknet.layer.N.convolution.weight, darknet.layer.N.normalization.
// {weight, bias, running_mean, running_var}, classifier.{weight, bias}; config.json lists the layers:
//   "conv_layers": [[filters, kernel, max_pool_after (0/1)], ...], "leaky_slope": 0.1.
#pragma once
#include <torch/nn/modules/linear.h>

#include <vector>

#include "kotsu/models/image_classifier.hpp"

namespace kotsu {

struct DarknetConvImpl;

class DarknetClassifier : public ImageClassifier {
 public:
  DarknetClassifier(const ImageConfig& config, int64_t num_labels);
  torch::Tensor head(const torch::Tensor& features) override;
  std::vector<ParamGroup> param_groups() override;
  int64_t num_layers() const override { return static_cast<int64_t>(layers_.size()) - 1; }  // layer 0 is the stem
  int64_t num_labels() const override { return num_labels_; }
  int64_t feature_size() const override { return feature_size_; }
  std::string base_prefix() const override { return "darknet."; }

 protected:
  torch::Tensor pooled_features(const torch::Tensor& pixels) override;

 private:
  int64_t num_labels_, feature_size_;
  std::vector<std::shared_ptr<DarknetConvImpl>> layers_;
  torch::nn::Linear classifier_{nullptr};
};

}  // namespace kotsu

#include "kotsu/io/image_config.hpp"
#include "kotsu/io/safetensors.hpp"
#include "kotsu/io/tfjs.hpp"

namespace kotsu {

// A Keras/TF.js layers model that is a Darknet-style stack (Conv2D without bias -> BatchNormalization ->
// LeakyReLU [-> MaxPooling2D 2x2], ..., a 1x1 Conv2D with bias to the classes, GlobalAveragePooling2D)
// converted to kotsu's names, with its config and preprocessing (Keras' x / 255 input).
// labels: one per class (empty: "LABEL_<i>"). Refuses (kotsu::Error naming the layer) any other layout.
struct DarknetImport {
  ImageConfig config;
  ImagePreprocess preprocess;
  NamedTensors tensors;
};
DarknetImport darknet_from_tfjs(const TfjsModel& m, std::vector<std::string> labels);
bool is_keras_conv_stack(const TfjsModel& m);

}  // namespace kotsu
