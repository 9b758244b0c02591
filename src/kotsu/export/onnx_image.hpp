// kotsu/export/onnx_image: the ONNX graph of an image classifier (ResNet, MobileNet V1/V2, Darknet),
// operator for operator the inference-mode forward pass of models/resnet, models/mobilenet and
// models/darknet (batch norm with its running statistics). Input: pixel_values, float
// [batch, channels, height, width] already preprocessed (the model's preprocessor_config.json, also
// recorded in the ONNX metadata); outputs: logits and probabilities, float [batch, labels].
#pragma once
#include "kotsu/export/onnx_graph.hpp"
#include "kotsu/models/image_model.hpp"

namespace kotsu {

void build_image_classifier_onnx(OnnxGraph& g, ImageModel& m);

}  // namespace kotsu
