// kotsu/models/quantize: dynamic int8 quantisation for inference (`kotsu serve --int8`, `kotsu export
// --int8`). Every dense layer of a transformer (models/dense: BERT, RoBERTa, DistilBERT, USE-Lite, GPT-2,
// the Llama family) computes with int8 weights (symmetric, one scale per output channel) and int8
// activations quantized per batch, through libtorch's quantized::linear_dynamic on the oneDNN engine;
// the small classification heads (torch Linear) and convolutions stay float32.
// On disk (export --int8), a quantized weight is stored as int8 "<name>.weight" plus float32
// "<name>.weight_scale" shaped to broadcast against it ([out, 1], GPT-2's [in, out] Conv1D: [1, out],
// convolutions: [out, 1, 1, 1]) and config.json's "quantization_config" says so; load_safetensors turns
// such a pair back into the float weight, so every command reads an int8 directory.
#pragma once
#include <torch/nn/module.h>

#include <cstdint>
#include <map>
#include <string>

namespace kotsu {

struct QuantizeReport {
  int64_t layers = 0;          // dense layers switched to int8
  int64_t float_bytes = 0;     // bytes of their float weights released
  int64_t int8_bytes = 0;      // bytes of their int8 weights
};

constexpr const char* kInt8QuantMethod = "kotsu_int8";  // config.json quantization_config.quant_method
// True when config.json in `dir` has kotsu's int8 quantization_config.
bool is_int8_model_dir(const std::string& dir);

// True when this libtorch has a quantized engine for dynamic int8 linear layers (oneDNN or QNNPACK).
bool int8_supported();
// Inference as `kotsu serve` runs it: when `force`, or when `dir` was written by export --int8, any LoRA
// adapter is folded in and the dense layers switched to int8 (quantize_dynamic_int8). kotsu::Error naming
// `dir` for a device other than the CPU. Returns whether the model runs in int8 mode.
bool int8_for_inference(torch::nn::Module& model, const std::string& dir, const torch::Device& device, bool force = false);

// Switches every dense layer of `model` to int8 inference (the model is for inference only afterwards).
// Refuses (kotsu::Error) a model with unmerged LoRA branches, or a libtorch without a quantized engine.
QuantizeReport quantize_dynamic_int8(torch::nn::Module& model);

// The per-channel int8 form of a float weight [out, in] (fan_in_fan_out: [in, out], scales per column):
// q = round(w / scale), scale = max |row| / 127.
// (A convolution [out, in, kh, kw] is quantized per output channel the same way.)
struct Int8Weight {
  torch::Tensor q;      // int8, the weight's shape
  torch::Tensor scale;  // float32, broadcastable to q
};
Int8Weight quantize_weight_int8(const torch::Tensor& w, bool fan_in_fan_out);
torch::Tensor dequantize_weight_int8(const Int8Weight& w);  // q * scale

}  // namespace kotsu
