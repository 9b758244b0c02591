// kotsu/models/mobilenet: MobileNet V1 (depthwise separable convolutions) and V2 (inverted residuals
// with linear bottlenecks) as image classifiers, laid out and named as Hugging Face's
// MobileNetV1ForImageClassification / MobileNetV2ForImageClassification:
//   mobilenet_v2.conv_stem.{first_conv, [expand_1x1], conv_3x3, reduce_1x1}, mobilenet_v2.layer.N.{expand_1x1,
//   conv_3x3, reduce_1x1}, mobilenet_v2.conv_1x1, each .convolution.weight + .normalization.{weight, bias,
//   running_mean, running_var}; mobilenet_v1.conv_stem, mobilenet_v1.layer.0..25; classifier.{weight,bias}.
// With tf_padding, convolutions pad like TensorFlow's "SAME" (the extra row/column goes after), so weights
// converted from TensorFlow give TensorFlow's numbers. features() = global average pool of the last
// feature map; head = dropout + linear.
#pragma once
#include <torch/nn/modules/linear.h>

#include <string>
#include <vector>

#include "kotsu/models/image_classifier.hpp"

namespace kotsu {

struct MobileNetConvImpl;
struct MobileNetV2BlockImpl;

// One conv + batch norm (+ ReLU6) of a MobileNet, as the importers see it (forward order).
struct MobileNetConvInfo {
  std::string name;  // "mobilenet_v2.layer.3.conv_3x3"
  int64_t in = 0, out = 0, kernel = 1, stride = 1, groups = 1;
  bool activation = true;
};

class MobileNetV2Classifier : public ImageClassifier {
 public:
  MobileNetV2Classifier(const ImageConfig& config, int64_t num_labels);
  torch::Tensor head(const torch::Tensor& features) override;
  std::vector<ParamGroup> param_groups() override;
  int64_t num_layers() const override { return static_cast<int64_t>(blocks_.size()) + 1; }  // + conv_1x1
  int64_t num_labels() const override { return num_labels_; }
  int64_t feature_size() const override { return feature_size_; }
  std::string base_prefix() const override { return "mobilenet_v2."; }
  std::vector<MobileNetConvInfo> convs() const;

 protected:
  torch::Tensor pooled_features(const torch::Tensor& pixels) override;

 private:
  int64_t num_labels_, feature_size_;
  std::shared_ptr<MobileNetConvImpl> first_conv_, stem_expand_, stem_dw_, stem_reduce_, conv_1x1_;
  std::vector<std::shared_ptr<MobileNetV2BlockImpl>> blocks_;
  torch::nn::Linear classifier_{nullptr};
};

class MobileNetV1Classifier : public ImageClassifier {
 public:
  MobileNetV1Classifier(const ImageConfig& config, int64_t num_labels);
  torch::Tensor head(const torch::Tensor& features) override;
  std::vector<ParamGroup> param_groups() override;
  int64_t num_layers() const override { return static_cast<int64_t>(convs_.size()) / 2; }  // dw + pw pairs
  int64_t num_labels() const override { return num_labels_; }
  int64_t feature_size() const override { return feature_size_; }
  std::string base_prefix() const override { return "mobilenet_v1."; }
  std::vector<MobileNetConvInfo> convs() const;

 protected:
  torch::Tensor pooled_features(const torch::Tensor& pixels) override;

 private:
  int64_t num_labels_, feature_size_;
  std::shared_ptr<MobileNetConvImpl> stem_;
  std::vector<std::shared_ptr<MobileNetConvImpl>> convs_;
  torch::nn::Linear classifier_{nullptr};
};

// Hugging Face's make_divisible (TensorFlow's _make_divisible) for V2 channel counts.
int64_t make_divisible(double value, int64_t divisor, int64_t min_value);

}  // namespace kotsu
