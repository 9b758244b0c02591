// kotsu export --merged --model ADAPTER --out DIR: a LoRA run folded into its base model, as a plain
// Hugging Face model directory (models/export_merged).
#include <fmt/format.h>

#include "commands.hpp"
#include "kotsu/core/error.hpp"
#include "kotsu/core/runtime.hpp"
#include "kotsu/models/export_merged.hpp"

namespace kotsu::cli {

Action add_export(CLI::App& app) {
  struct Flags {
    std::string model, out, dtype = "float32";
    bool merged = false, force = false;
  };
  auto f = std::make_shared<Flags>();
  auto* c = app.add_subcommand("export", "write a trained model in another form (--merged: a LoRA adapter folded into its base model)");
  c->add_option("--model", f->model, "the run or model directory to export")->required();
  c->add_option("--out", f->out, "directory to write")->required();
  c->add_flag("--merged", f->merged, "fold a LoRA adapter (PEFT format) into its base model's weights: a plain Hugging Face model");
  c->add_option("--dtype", f->dtype, "weights of the written model: float32, bfloat16 or float16")->capture_default_str();
  c->add_flag("--force", f->force, "replace an existing --out directory");
  return [f]() {
    runtime_init(0);
    if (!f->merged) throw Error("options", "merged", "say what to export: --merged (ONNX export is not written yet)");
    const ImportReport r = export_merged(f->model, f->out, f->dtype, f->force);
    fmt::print("exported {} ({} tensors, {} parameters, {}; {}) into {}\n", r.architecture, r.tensors, r.parameters, f->dtype, r.extra, f->out);
    return 0;
  };
}

}  // namespace kotsu::cli
