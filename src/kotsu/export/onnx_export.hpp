// kotsu/export/onnx_export: `kotsu export --onnx`: a model directory or run (text classifier, image
// classifier, GPT-2 causal LM or a LoRA run on one, merged) written as one ONNX file, opset 17, with
// dynamic batch and sequence (or height and width) axes and the weights as initializers, checked by the
// ONNX checker before it is written (atomically). Metadata: "kotsu.architecture", "kotsu.labels"
// (JSON array, classifiers), "kotsu.preprocess" (image classifiers: preprocessor_config.json).
#pragma once
#include <cstdint>
#include <string>

namespace kotsu {

struct OnnxExportReport {
  std::string architecture;  // "bert", "resnet", "gpt2", ...
  int64_t parameters = 0;
  size_t nodes = 0;
  std::string inputs;  // in words, for the CLI
};

constexpr int64_t kOnnxOpset = 17;

// Refuses (kotsu::Error) an existing `out` unless overwrite, and an architecture without an exporter.
OnnxExportReport export_onnx(const std::string& model_dir, const std::string& out, bool overwrite);

}  // namespace kotsu
