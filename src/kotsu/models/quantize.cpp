#include "kotsu/models/quantize.hpp"

#include <ATen/Context.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "kotsu/core/error.hpp"
#include "kotsu/io/json_file.hpp"
#include "kotsu/models/dense.hpp"
#include "kotsu/models/lora.hpp"

namespace kotsu {

namespace {
// oneDNN first (the faster one on x86), QNNPACK otherwise; set once for the process.
bool select_engine() {
  static const bool ok = [] {
    const auto& engines = at::globalContext().supportedQEngines();
    for (auto e : {at::QEngine::ONEDNN, at::QEngine::X86, at::QEngine::FBGEMM, at::QEngine::QNNPACK})
      if (std::find(engines.begin(), engines.end(), e) != engines.end()) {
        at::globalContext().setQEngine(e);
        return true;
      }
    return false;
  }();
  return ok;
}
}  // namespace

bool int8_supported() { return select_engine(); }

bool is_int8_model_dir(const std::string& dir) {
  const std::filesystem::path cfg = std::filesystem::path(dir) / "config.json";
  if (!std::filesystem::is_regular_file(cfg)) return false;
  const nlohmann::json j = read_json(cfg.string(), size_t(16) << 20);
  return j.is_object() && j.contains("quantization_config") && j["quantization_config"].is_object() &&
         j["quantization_config"].value("quant_method", "") == kInt8QuantMethod;
}

QuantizeReport quantize_dynamic_int8(torch::nn::Module& model) {
  if (!select_engine()) throw Error("int8", "libtorch", "this libtorch has no quantized engine (oneDNN or QNNPACK) for int8 layers");
  QuantizeReport r;
  for (const auto& m : model.modules(true)) {
    auto d = std::dynamic_pointer_cast<DenseImpl>(m);
    if (!d || d->is_int8()) continue;
    r.float_bytes += d->quantize_int8();
    r.int8_bytes += d->in_features * d->out_features;
    ++r.layers;
  }
  return r;
}

bool int8_for_inference(torch::nn::Module& model, const std::string& dir, const torch::Device& device, bool force) {
  if (!force && !is_int8_model_dir(dir)) return false;
  if (device.type() != torch::kCPU) throw Error(dir, "int8", "int8 layers run on the CPU only (use --device cpu)");
  merge_lora(model);  // int8 layers have no LoRA branch
  quantize_dynamic_int8(model);
  return true;
}

Int8Weight quantize_weight_int8(const torch::Tensor& w, bool fan_in_fan_out) {
  const int64_t axis = fan_in_fan_out ? 1 : 0;  // the output channels
  const torch::Tensor f = w.to(torch::kFloat);
  std::vector<int64_t> reduce;
  for (int64_t d = 0; d < f.dim(); ++d)
    if (d != axis) reduce.push_back(d);
  torch::Tensor scale = f.abs().amax(reduce, /*keepdim=*/true).div(127.0);
  scale = torch::where(scale > 0, scale, torch::ones_like(scale));
  return {f.div(scale).round().clamp(-127, 127).to(torch::kInt8).contiguous(), scale.contiguous()};
}

torch::Tensor dequantize_weight_int8(const Int8Weight& w) { return w.q.to(torch::kFloat) * w.scale; }

}  // namespace kotsu
