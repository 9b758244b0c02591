// kotsu/io/image_config: config.json of an image-classification model (Hugging Face field names:
// MobileNetV1Config / MobileNetV2Config / ResNetConfig) and its preprocessor_config.json (how pixels
// become the model's input: resize, crop, rescale, normalise).
// requires: nothing of the files; a missing or out-of-range field is a kotsu::Error naming it.
#pragma once
#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace kotsu {

struct ImageConfig {
  std::string model_type;  // mobilenet_v1 | mobilenet_v2 | darknet | resnet | efficientnet_lite
  int64_t num_channels = 3;
  int64_t image_size = 224;
  double depth_multiplier = 1.0;   // mobilenet: channels
  double width_coefficient = 1.0;  // efficientnet_lite: channels
  double depth_coefficient = 1.0;  // efficientnet_lite: blocks per stage
  int64_t min_depth = 8;
  int64_t depth_divisible_by = 8;  // mobilenet_v2
  double expand_ratio = 6.0;       // mobilenet_v2
  bool first_layer_is_expansion = true;
  bool finegrained_output = true;
  std::string hidden_act = "relu6";
  bool tf_padding = true;  // TensorFlow "SAME" padding (asymmetric for stride 2 on even sizes)
  double classifier_dropout_prob = 0.2;
  double layer_norm_eps = 0.001;  // batch norm epsilon
  double initializer_range = 0.02;
  std::vector<std::array<int64_t, 3>> conv_layers;  // darknet: filters, kernel, max pool after (0/1)
  double leaky_slope = 0.1;                          // darknet
  int64_t embedding_size = 64;                       // resnet
  std::vector<int64_t> hidden_sizes{256, 512, 1024, 2048}, depths{3, 4, 6, 3};  // resnet (ResNet-50 defaults)
  std::string layer_type = "bottleneck";             // resnet: basic | bottleneck
  bool downsample_in_first_stage = false;            // resnet
  std::vector<std::string> labels;  // id2label in id order; empty for a backbone without a head
  nlohmann::json raw;

  static ImageConfig from_json(const nlohmann::json& j, const std::string& path);
  static ImageConfig load(const std::string& path);
  nlohmann::json to_json() const;
};

// preprocessor_config.json: resize the shorter side to resize_shortest, center crop to crop_size,
// value = (pixel * rescale_factor - mean[c]) / std[c].
struct ImagePreprocess {
  int64_t resize_shortest = 256;
  int64_t crop_height = 224, crop_width = 224;
  double rescale_factor = 1.0 / 255.0;
  std::vector<double> mean{0.485, 0.456, 0.406}, std{0.229, 0.224, 0.225};
  // The shorter side a picture needs before the transforms (its resize or crop, whichever is larger):
  // pictures may be decoded and kept at this size.
  int64_t decode_side() const { return std::max({resize_shortest, crop_height, crop_width}); }
  // A square input of `size` (crop), resizing by the same resize/crop ratio as before.
  void set_size(int64_t size);
  static ImagePreprocess from_json(const nlohmann::json& j, const std::string& path);
  static ImagePreprocess load(const std::string& path);
  nlohmann::json to_json() const;
};

bool is_image_model_type(const std::string& model_type);

}  // namespace kotsu
