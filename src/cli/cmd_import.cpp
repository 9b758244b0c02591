// kotsu import FORMAT SRC --out DIR: converts a model from another ecosystem into a kotsu model directory.
#include <fmt/format.h>

#include "commands.hpp"
#include "kotsu/core/error.hpp"
#include "kotsu/models/import_tfjs.hpp"

namespace kotsu::cli {

Action add_import(CLI::App& app) {
  struct Flags {
    std::string format, src, out;
    bool force = false;
  };
  auto f = std::make_shared<Flags>();
  auto* c = app.add_subcommand("import", "convert a model from another ecosystem into a kotsu model directory");
  c->add_option("format", f->format, "source format: tfjs")->required();
  c->add_option("src", f->src, "TF.js model.json, or the folder holding it")->required();
  c->add_option("--out", f->out, "model directory to write")->required();
  c->add_flag("--force", f->force, "replace a non-empty --out");
  return [f]() {
    if (f->format != "tfjs") throw Error("import", "format", "'" + f->format + "' is not supported (tfjs)");
    ImportReport r = import_tfjs(f->src, f->out, f->force);
    fmt::print("imported {} ({} tensors, {:.1f}M parameters, tokenizer {}) into {}\n", r.architecture, r.tensors,
               static_cast<double>(r.parameters) / 1e6, r.tokenizer, f->out);
    return 0;
  };
}

}  // namespace kotsu::cli
