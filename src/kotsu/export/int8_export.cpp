#include "kotsu/export/int8_export.hpp"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <filesystem>
#include <set>

#include "kotsu/core/error.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/io/json_file.hpp"
#include "kotsu/io/model_dir.hpp"
#include "kotsu/io/safetensors.hpp"
#include "kotsu/models/causal_lm.hpp"
#include "kotsu/models/dense.hpp"
#include "kotsu/models/image_model.hpp"
#include "kotsu/models/lora.hpp"
#include "kotsu/models/quantize.hpp"
#include "kotsu/models/text_model.hpp"

namespace kotsu {

namespace fs = std::filesystem;

namespace {

// Which weights to store as int8 (name -> fan_in_fan_out): every Dense, and convolutions.
std::map<std::string, bool> int8_weights(torch::nn::Module& model) {
  std::map<std::string, bool> out;
  for (const auto& item : model.named_modules("", false)) {
    if (auto d = std::dynamic_pointer_cast<DenseImpl>(item.value())) out[item.key() + ".weight"] = d->fan_in_fan_out;
    else if (std::dynamic_pointer_cast<torch::nn::Conv2dImpl>(item.value())) out[item.key() + ".weight"] = false;
  }
  return out;
}
}  // namespace

Int8ExportReport export_int8(const std::string& model_dir, const std::string& out, bool overwrite) {
  if (is_peft_adapter_dir(model_dir))
    throw Error(model_dir, "adapter_config.json", "a LoRA adapter: fold it into its base model first (kotsu export --merged), then quantize that");
  check_model_dir_target(out, overwrite);
  torch::NoGradGuard ng;
  Int8ExportReport r;
  std::vector<std::pair<std::string, torch::Tensor>> state;
  std::map<std::string, bool> targets;
  if (is_causal_lm_dir(model_dir)) {
    CausalLmModel m = load_causal_lm(model_dir);
    r.architecture = m.config.model_type;
    state = m.model->state();
    targets = int8_weights(*m.model);
  } else if (is_image_model_dir(model_dir)) {
    ImageModel m = load_image_model(model_dir);
    r.architecture = m.config.model_type;
    state = m.model->state();
    targets = int8_weights(*m.model);
  } else {
    TextModel m = load_text_model(model_dir);
    r.architecture = m.config.model_type;
    state = merged_state(*m.model, m.model->state());
    targets = int8_weights(*m.model);
  }
  NamedTensors tensors;
  for (auto& [name, t] : state) {
    auto it = targets.find(name);
    if (it == targets.end() || t.dim() < 2) {
      tensors.emplace_back(name, t.is_floating_point() ? t.to(torch::kFloat32) : t);
      continue;
    }
    const Int8Weight q = quantize_weight_int8(t, it->second);
    tensors.emplace_back(name, q.q);
    tensors.emplace_back(name + "_scale", q.scale);
    ++r.tensors;
    r.float_bytes += t.numel() * 4;
  }
  if (r.tensors == 0) throw Error(model_dir, "model", "no dense or convolution weights to quantize");

  const std::string staging = begin_model_dir(out, overwrite);
  // everything else the directory holds (tokenizer, preprocessing, run.json, reports), not the weights
  // or training checkpoints
  for (const auto& e : fs::directory_iterator(model_dir)) {
    const std::string name = e.path().filename().string();
    if (!e.is_regular_file() || name == "config.json" || (name.rfind("model", 0) == 0 && name.find(".safetensors") != std::string::npos)) continue;
    fs::copy_file(e.path(), fs::path(staging) / name);
  }
  nlohmann::json cfg = read_json((fs::path(model_dir) / "config.json").string(), size_t(16) << 20);
  cfg["quantization_config"] = {{"quant_method", kInt8QuantMethod}, {"bits", 8}, {"weights", "symmetric int8, one scale per output channel"},
                                {"activations", "dense layers: int8 quantized per batch at run time (kotsu serve)"},
                                {"int8_tensors", r.tensors}};
  write_atomic((fs::path(staging) / "config.json").string(), cfg.dump(2) + "\n");
  const std::string st = (fs::path(staging) / "model.safetensors").string();
  save_safetensors(st, tensors, {{"format", "pt"}, {"quantization", kInt8QuantMethod}});
  r.file_bytes = static_cast<int64_t>(fs::file_size(st));
  finish_model_dir(staging, out);
  return r;
}

}  // namespace kotsu
