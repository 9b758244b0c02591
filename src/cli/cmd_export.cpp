// kotsu export RUN --onnx FILE: a model as one ONNX file (export/onnx_export), checked by the ONNX checker.
// kotsu export RUN --merged --out DIR: a LoRA run folded into its base model, as a plain Hugging Face
// model directory (models/export_merged).
#include <fmt/format.h>

#include "commands.hpp"
#include "kotsu/core/error.hpp"
#include "kotsu/core/runtime.hpp"
#include "kotsu/export/int8_export.hpp"
#include "kotsu/export/onnx_export.hpp"
#include "kotsu/models/export_merged.hpp"

namespace kotsu::cli {

Action add_export(CLI::App& app) {
  struct Flags {
    std::string model, out, onnx, dtype = "float32";
    bool merged = false, int8 = false, force = false;
  };
  auto f = std::make_shared<Flags>();
  auto* c = app.add_subcommand("export", "write a trained model in another form: --onnx FILE (ONNX Runtime and other runtimes), "
                                         "--merged --out DIR (a LoRA adapter folded into its base model), --int8 --out DIR (int8 weights)");
  c->add_option("model,--model", f->model, "the run or model directory to export")->required();
  c->add_option("--onnx", f->onnx, "write an ONNX file (opset 17, dynamic batch and sequence axes): text classifiers "
                                   "(BERT, RoBERTa, DistilBERT), image classifiers (ResNet, MobileNet, EfficientNet-Lite, Darknet), GPT-2 (LoRA runs merged)");
  c->add_option("--out", f->out, "directory to write (--merged, --int8)");
  c->add_flag("--int8", f->int8, "the model with int8 weights (per output channel) in --out DIR: a quarter of the size; kotsu serve runs it in int8");
  c->add_flag("--merged", f->merged, "fold a LoRA adapter (PEFT format) into its base model's weights: a plain Hugging Face model");
  c->add_option("--dtype", f->dtype, "weights of the merged model: float32, bfloat16 or float16")->capture_default_str();
  c->add_flag("--force", f->force, "replace an existing output");
  return [f]() {
    runtime_init(0);
    if (int(f->merged) + int(f->int8) + int(!f->onnx.empty()) != 1)
      throw Error("<options>", "export", "say what to write: --onnx FILE, --merged --out DIR or --int8 --out DIR (one of them)");
    if (!f->onnx.empty()) {
      const OnnxExportReport r = export_onnx(f->model, f->onnx, f->force);
      fmt::print("exported {} ({} parameters, {} nodes, opset {}) to {}: {}\n", r.architecture, r.parameters, r.nodes, kOnnxOpset, f->onnx, r.inputs);
      return 0;
    }
    if (f->out.empty()) throw Error("<options>", "out", std::string(f->int8 ? "--int8" : "--merged") + " needs --out DIR");
    if (f->int8) {
      const Int8ExportReport r = export_int8(f->model, f->out, f->force);
      fmt::print("exported {} with {} int8 weight tensors ({:.1f} MiB as float32, model.safetensors now {:.1f} MiB) into {}\n", r.architecture,
                 r.tensors, r.float_bytes / 1048576.0, r.file_bytes / 1048576.0, f->out);
      return 0;
    }
    const ImportReport r = export_merged(f->model, f->out, f->dtype, f->force);
    fmt::print("exported {} ({} tensors, {} parameters, {}; {}) into {}\n", r.architecture, r.tensors, r.parameters, f->dtype, r.extra, f->out);
    return 0;
  };
}

}  // namespace kotsu::cli
