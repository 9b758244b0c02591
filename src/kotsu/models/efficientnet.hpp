// kotsu/models/efficientnet: EfficientNet-Lite (Tan & Le 2019; the "Lite" variants for mobile and edge:
// no squeeze-and-excitation, ReLU6, a fixed 32-channel stem and 1280-channel head) as an image classifier,
// laid out and named as timm's efficientnet_lite / tf_efficientnet_lite models:
//   conv_stem, bn1; blocks.S.J (stage S, block J): the first stage's depthwise-separable blocks
//   {conv_dw, bn1, conv_pw, bn2}, the others' inverted residuals {conv_pw, bn1, conv_dw, bn2, conv_pwl,
//   bn3} (residual when stride 1 and the channels stay); conv_head, bn2; classifier.
// Stages of Lite0 (kernel, stride, expansion, channels out, repeats): (3,1,1,16,1) (3,2,6,24,2) (5,2,6,40,2)
// (3,2,6,80,3) (5,1,6,112,3) (5,2,6,192,4) (3,1,6,320,1) after a 32-channel stem; width_coefficient scales
// the channels (multiples of 8, never below 90% of the scaled value), depth_coefficient the repeats (rounded
// up) except the first and last stage's, as timm's _gen_efficientnet_lite does (Lite1-4: 1.0/1.1, 1.1/1.2,
// 1.2/1.4, 1.4/1.8). With tf_padding, convolutions pad like TensorFlow's SAME (timm's tf_ variants: the
// weights ported from TensorFlow). features() = global average pool of the head's 1280 channels.
#pragma once
#include <memory>
#include <vector>

#include "kotsu/models/image_classifier.hpp"

namespace kotsu {

struct EfficientNetConvImpl;
struct EfficientNetBlockImpl;

// One block as the ONNX exporter sees it (forward order).
struct EfficientNetBlockInfo {
  std::string name;  // "blocks.S.J"
  int64_t stride = 1;
  bool inverted = true;   // conv_pw, conv_dw, conv_pwl; false: conv_dw, conv_pw (the first stage)
  bool residual = false;  // input added to the output
};

class EfficientNetLiteClassifier : public ImageClassifier {
 public:
  EfficientNetLiteClassifier(const ImageConfig& config, int64_t num_labels);
  torch::Tensor head(const torch::Tensor& features) override;
  // "stem" (conv_stem, bn1), "layer.i" for each block in order then the head convolution, "head" (classifier)
  std::vector<ParamGroup> param_groups() override;
  int64_t num_layers() const override { return static_cast<int64_t>(blocks_.size()) + 1; }
  int64_t num_labels() const override { return num_labels_; }
  int64_t feature_size() const override { return 1280; }
  std::string base_prefix() const override { return ""; }
  std::vector<EfficientNetBlockInfo> blocks() const { return block_info_; }

 protected:
  torch::Tensor pooled_features(const torch::Tensor& pixels) override;

 private:
  int64_t num_labels_;
  std::shared_ptr<EfficientNetConvImpl> stem_, conv_head_;
  std::vector<std::shared_ptr<EfficientNetBlockImpl>> blocks_;
  std::vector<EfficientNetBlockInfo> block_info_;  // one per block, in order
  torch::nn::Linear classifier_{nullptr};
};

}  // namespace kotsu
