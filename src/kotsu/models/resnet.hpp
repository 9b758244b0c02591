// kotsu/models/resnet: ResNet-18/34/50/101/152 (basic and bottleneck blocks, stride in the 3x3 conv as
// torchvision's "V1.5") as an image classifier, laid out and named as Hugging Face's
// ResNetForImageClassification: resnet.embedder.embedder.{convolution, normalization} (7x7 stride 2,
// then a 3x3 stride-2 max pool), resnet.encoder.stages.S.layers.L.{shortcut, layer.K}.{convolution,
// normalization}, classifier.1.{weight, bias}. Checkpoints with torchvision/timm names (conv1, bn1,
// layerN.M.convK/bnK/downsample.{0,1}, fc) are detected by their tensor names and renamed on load.
// config.json: embedding_size, hidden_sizes, depths, layer_type (basic | bottleneck), downsample_in_first_stage.
#pragma once
#include <torch/nn/modules/linear.h>

#include <map>
#include <vector>

#include "kotsu/models/image_classifier.hpp"

namespace kotsu {

struct ResNetBlockImpl;
struct ResNetConvImpl;

class ResNetClassifier : public ImageClassifier {
 public:
  ResNetClassifier(const ImageConfig& config, int64_t num_labels);
  torch::Tensor head(const torch::Tensor& features) override;
  std::vector<ParamGroup> param_groups() override;
  int64_t num_layers() const override { return static_cast<int64_t>(blocks_.size()); }
  int64_t num_labels() const override { return num_labels_; }
  int64_t feature_size() const override { return feature_size_; }
  std::string base_prefix() const override { return "resnet."; }

 protected:
  torch::Tensor pooled_features(const torch::Tensor& pixels) override;

 private:
  int64_t num_labels_, feature_size_;
  std::shared_ptr<ResNetConvImpl> stem_;
  std::vector<std::shared_ptr<ResNetBlockImpl>> blocks_;
  std::vector<std::string> block_prefix_;  // "resnet.encoder.stages.S.layers.L."
  torch::nn::Linear classifier_{nullptr};
};

// True when the tensors carry torchvision/timm ResNet names (conv1.weight, layer1.0.conv1.weight, ...).
bool has_torchvision_resnet_names(const std::map<std::string, torch::Tensor>& tensors);
// The same tensors under Hugging Face names.
std::map<std::string, torch::Tensor> resnet_hf_names(const std::map<std::string, torch::Tensor>& tensors);

}  // namespace kotsu
