// kotsu/export/int8_export: `kotsu export RUN --int8 --out DIR`: the model directory again, with every
// dense layer's weight (and a CNN's convolution weights) stored as int8 with per-output-channel scales
// (models/quantize's format; a quarter of the float bytes), config.json's "quantization_config" saying
// so, and the other files (tokenizer, preprocessing, run.json) copied. Every command reads the result
// (weights dequantized on load); `kotsu serve` runs its dense layers in int8.
#pragma once
#include <cstdint>
#include <string>

namespace kotsu {

struct Int8ExportReport {
  std::string architecture;
  int64_t tensors = 0;        // weights stored as int8
  int64_t float_bytes = 0;    // their bytes as float32
  int64_t file_bytes = 0;     // model.safetensors written
};

// Refuses (kotsu::Error) a LoRA adapter directory (merge it first), an existing non-empty `out` unless
// overwrite; `out` appears complete or not at all.
Int8ExportReport export_int8(const std::string& model_dir, const std::string& out, bool overwrite);

}  // namespace kotsu
