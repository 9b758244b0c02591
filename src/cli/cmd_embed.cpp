// kotsu embed --model DIR --data FILE --out F.npy: the features the head sees, one row per example, as a
// float32 .npy matrix (and, with --rows, a JSON line per row naming its picture or line and label).
#include <fmt/format.h>

#include "commands.hpp"
#include "kotsu/core/runtime.hpp"
#include "kotsu/infer/embed.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/io/npy.hpp"

namespace kotsu::cli {

Action add_embed(CLI::App& app) {
  struct Flags {
    std::string model, data, out, rows, text_col = "text", device = "cpu";
    int64_t batch = 64, image_size = 0;
    int threads = 0;
    bool skip_bad = false;
  };
  auto f = std::make_shared<Flags>();
  auto* c = app.add_subcommand("embed", "write the features of a model (a run or a base model) for every example as a .npy matrix");
  c->add_option("--model", f->model, "model or run directory")->required();
  c->add_option("--data", f->data, "texts (.csv, .tsv, .jsonl) or pictures (class-folder tree, CSV of path,label, IDX file)")->required();
  c->add_option("--out", f->out, "the .npy file to write (float32, rows x features)")->required();
  c->add_option("--rows", f->rows, "also write one JSON line per row: its picture or line, and label");
  c->add_option("--text-col", f->text_col, "text column")->capture_default_str();
  c->add_option("--image-size", f->image_size, "pictures: square input size (0 = the model's)")->capture_default_str();
  c->add_flag("--skip-bad", f->skip_bad, "pictures: leave out unreadable files (listed) instead of stopping");
  c->add_option("--batch-size", f->batch, "examples per forward pass")->capture_default_str();
  c->add_option("--threads", f->threads, "CPU threads (0 = all cores)");
  c->add_option("--device", f->device, "cpu or cuda[:N]")->capture_default_str();
  return [f]() {
    check_device(f->device);
    runtime_init(f->threads);
    TextColumns cols;
    cols.text = f->text_col;
    Embedded e = embed_data(f->model, f->data, cols, f->batch, f->device, f->skip_bad, f->image_size);
    for (auto& [name, why] : e.skipped) fmt::print(stderr, "skipped {}: {}\n", name, why);
    write_npy(f->out, e.features);
    if (!f->rows.empty()) {
      std::string out;
      for (size_t i = 0; i < e.names.size(); ++i) {
        nlohmann::ordered_json j;
        j["row"] = i;
        j["name"] = e.names[i];
        if (!e.labels[i].empty()) j["label"] = e.labels[i];
        out += j.dump() + "\n";
      }
      write_atomic(f->rows, out);
    }
    fmt::print("wrote {} x {} features to {}{}\n", e.features.size(0), e.features.size(1), f->out,
               e.skipped.empty() ? "" : fmt::format(" ({} unreadable pictures skipped)", e.skipped.size()));
    return 0;
  };
}

}  // namespace kotsu::cli
