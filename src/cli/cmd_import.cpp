// kotsu import FORMAT SRC --out DIR: converts a model from another ecosystem into a kotsu model directory.
#include <fmt/format.h>

#include "commands.hpp"
#include "kotsu/core/error.hpp"
#include "kotsu/models/import_tfjs.hpp"
#include "kotsu/models/import_tflite.hpp"

namespace kotsu::cli {

Action add_import(CLI::App& app) {
  struct Flags {
    std::string format, src, out, labels;
    bool force = false;
  };
  auto f = std::make_shared<Flags>();
  auto* c = app.add_subcommand("import", "convert a model from another ecosystem into a kotsu model directory");
  c->add_option("format", f->format, "source format: tfjs or tflite")->required();
  c->add_option("src", f->src, "TF.js model.json (or its folder), or a .tflite file")->required();
  c->add_option("--labels", f->labels, "image classifiers: class names, one per line, in the classifier's order");
  c->add_option("--out", f->out, "model directory to write")->required();
  c->add_flag("--force", f->force, "replace a non-empty --out");
  return [f]() {
    ImportReport r;
    if (f->format == "tfjs") {
      r = import_tfjs(f->src, f->out, f->force, f->labels);
    } else if (f->format == "tflite") {
      r = import_tflite(f->src, f->out, f->labels, f->force);
    } else {
      throw Error("import", "format", "'" + f->format + "' is not supported (tfjs, tflite)");
    }
    fmt::print("imported {} ({} tensors, {:.1f}M parameters; {}) into {}\n", r.architecture, r.tensors,
               static_cast<double>(r.parameters) / 1e6, r.extra, f->out);
    return 0;
  };
}

}  // namespace kotsu::cli
