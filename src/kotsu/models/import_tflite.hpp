// kotsu/models/import_tflite: turns a TensorFlow Lite image classifier into a kotsu model directory
// (config.json + model.safetensors + preprocessor_config.json) that train, eval and predict load like a
// Hugging Face checkpoint. Recognised: MobileNet V1 and V2 at any width multiplier and input size, float
// or quantized (uint8 per-tensor, int8 per-channel), with or without their classifier (a backbone such
// as the embedding extractors imports with no head). Convolution weights are dequantized; the batch
// norms TFLite folded into the convolutions come back as identity batch norms carrying the folded bias,
// so the imported model computes the float version of the quantized graph and trains like any other.
// The input quantization (pixel -> (q - zero point) * scale) becomes the normalisation mean/std.
// ensures: the directory appears complete or not at all; a model of another layout is refused with a
//          kotsu::Error saying which operator did not fit.
#pragma once
#include <string>
#include <vector>

#include "kotsu/io/image_config.hpp"
#include "kotsu/io/model_dir.hpp"
#include "kotsu/io/safetensors.hpp"
#include "kotsu/io/tflite.hpp"

namespace kotsu {

struct TfliteImport {
  ImageConfig config;
  ImagePreprocess preprocess;
  NamedTensors tensors;
};

// labels: one per class of the model's classifier (empty: "LABEL_<i>").
TfliteImport mobilenet_from_tflite(const TfliteModel& m, std::vector<std::string> labels);

// labels_file: one class name per line (optional).
ImportReport import_tflite(const std::string& src, const std::string& out, const std::string& labels_file = "",
                           bool overwrite = false);

}  // namespace kotsu
