#include "kotsu/models/export_merged.hpp"

#include <torch/torch.h>

#include <filesystem>

#include "kotsu/core/error.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/io/json_file.hpp"
#include "kotsu/io/safetensors.hpp"
#include "kotsu/models/lora.hpp"
#include "kotsu/models/text_model.hpp"
#include "kotsu/text/tokenizer.hpp"

namespace kotsu {

namespace fs = std::filesystem;

namespace {

// A text-classification LoRA run (PEFT task SEQ_CLS) already holds its merged model (the trainer saves the
// adapters folded in, beside the adapter files): that model is written without the adapter files.
ImportReport export_merged_classifier(const std::string& run, const std::string& out, torch::ScalarType type, const std::string& dtype,
                                      bool overwrite) {
  TextModel m = load_text_model(run);
  const std::string staging = begin_model_dir(out, overwrite);
  save_text_model(m, staging);
  if (type != torch::kFloat) {
    const std::string weights = (fs::path(staging) / "model.safetensors").string();
    NamedTensors w;
    for (auto& [name, t] : load_safetensors(weights)) w.emplace_back(name, t.to(type).contiguous());
    save_safetensors(weights, w, {{"format", "pt"}});
    nlohmann::json config = read_json((fs::path(staging) / "config.json").string());
    config["torch_dtype"] = dtype;
    write_atomic((fs::path(staging) / "config.json").string(), config.dump(2) + "\n");
  }
  finish_model_dir(staging, out);
  ImportReport r;
  r.architecture = m.config.model_type;
  for (auto& [name, t] : m.model->state()) r.parameters += t.numel(), ++r.tensors;
  r.extra = "LoRA merged (the run's model, adapters folded in) from " + run;
  return r;
}

}  // namespace

ImportReport export_merged(const std::string& adapter_dir, const std::string& out, const std::string& dtype, bool overwrite) {
  if (!is_peft_adapter_dir(adapter_dir)) throw Error(adapter_dir, "adapter_config.json", "missing: --merged needs a LoRA adapter directory");
  if (dtype != "float32" && dtype != "bfloat16" && dtype != "float16") throw Error("options", "dtype", "'" + dtype + "' is not float32, bfloat16 or float16");
  const torch::ScalarType type = dtype == "float32" ? torch::kFloat : dtype == "bfloat16" ? torch::kBFloat16 : torch::kHalf;
  check_model_dir_target(out, overwrite);
  const nlohmann::json adapter = read_json((fs::path(adapter_dir) / "adapter_config.json").string());
  if (adapter.value("task_type", "") == "SEQ_CLS") return export_merged_classifier(adapter_dir, out, type, dtype, overwrite);
  CausalLmModel m = load_causal_lm_or_adapter(adapter_dir, torch::kFloat);  // merged in float32, then cast
  merge_lora(*m.model);
  const std::string base = adapter.at("base_model_name_or_path");
  const std::string staging = begin_model_dir(out, overwrite);
  NamedTensors w;
  int64_t params = 0;
  for (auto& [name, t] : m.model->state()) {
    w.emplace_back(name, t.detach().to(type).contiguous().cpu());
    params += t.numel();
  }
  save_safetensors((fs::path(staging) / "model.safetensors").string(), w, {{"format", "pt"}});
  nlohmann::json config = read_json((fs::path(base) / "config.json").string());
  config["torch_dtype"] = dtype;
  write_atomic((fs::path(staging) / "config.json").string(), config.dump(2) + "\n");
  // the adapter run carries the tokenizer it trained with; else the base model's
  Tokenizer::load(fs::exists(fs::path(adapter_dir) / "tokenizer_config.json") || fs::exists(fs::path(adapter_dir) / "tokenizer.json") ? adapter_dir : base).save(staging);
  finish_model_dir(staging, out);
  ImportReport r;
  r.architecture = m.config.model_type;
  r.tensors = w.size();
  r.parameters = params;
  r.extra = "LoRA merged from " + adapter_dir + " into " + base;
  return r;
}

}  // namespace kotsu
