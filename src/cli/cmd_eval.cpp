// kotsu eval --run DIR --data FILE: metrics of a trained run on a labelled file, as text and a JSON report.
#include <fmt/format.h>

#include <filesystem>

#include "commands.hpp"
#include "kotsu/core/runtime.hpp"
#include "kotsu/eval/scores.hpp"
#include "kotsu/infer/evaluate.hpp"
#include "kotsu/infer/evaluate_image.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/io/run_status.hpp"

namespace kotsu::cli {

Action add_eval(CLI::App& app) {
  struct Flags {
    std::string run, data, report, predictions, text_col, label_col, device = "cpu";
    int64_t batch = 64;
    int threads = 0;
    bool json = false, skip_bad = false;
  };
  auto f = std::make_shared<Flags>();
  auto* c = app.add_subcommand("eval", "evaluate a trained run on labelled texts or pictures");
  c->add_option("--run", f->run, "run directory written by kotsu train")->required();
  c->add_option("--data", f->data, "labelled data: .csv, .tsv or .jsonl; pictures: a class-folder tree, a CSV of path,label or an IDX file")->required();
  c->add_flag("--skip-bad", f->skip_bad, "pictures: leave out unreadable files instead of stopping");
  c->add_option("--text-col", f->text_col, "text column (default: the run's)");
  c->add_option("--label-col", f->label_col, "label column (default: the run's)");
  c->add_option("--report", f->report, "JSON report path (default: RUN/eval-<data name>.json)");
  c->add_option("--predictions", f->predictions, "write one JSON line per row (text, label, predicted, confidence)");
  c->add_option("--batch-size", f->batch, "examples per forward pass")->capture_default_str();
  c->add_option("--threads", f->threads, "CPU threads (0 = all cores)");
  c->add_option("--device", f->device, "cpu or cuda[:N]")->capture_default_str();
  c->add_flag("--json", f->json, "print the JSON report instead of the table");
  return [f]() {
    check_device(f->device);
    if (const auto w = unfinished_run_warning(f->run); !w.empty()) fmt::print(stderr, "kotsu: {}\n", w);
    runtime_init(f->threads);
    EvalResult r;
    if (is_image_model_dir(f->run)) {
      std::vector<std::string> names;
      std::vector<std::pair<std::string, std::string>> skipped;
      r = evaluate_image_run(f->run, f->data, f->batch, f->device, f->skip_bad, &names, &skipped);
      for (auto& [name, why] : skipped) fmt::print(stderr, "skipped {}: {}\n", name, why);
      if (!skipped.empty()) r.report["skipped"] = skipped.size();
      if (!f->predictions.empty()) write_image_predictions(r, names, f->predictions);
    } else {
      TextColumns cols = run_columns(f->run);
      if (!f->text_col.empty()) cols.text = f->text_col;
      if (!f->label_col.empty()) cols.label = f->label_col;
      TextDataset rows;
      r = evaluate_run(f->run, f->data, cols, f->batch, f->device, &rows);
      if (!f->predictions.empty()) write_predictions(r, rows, f->predictions);
    }
    std::string report = f->report;
    if (report.empty())
      report = (std::filesystem::path(f->run) / ("eval-" + std::filesystem::path(f->data).stem().string() + ".json")).string();
    write_atomic(report, r.report.dump(2) + "\n");
    if (f->json) {
      fmt::print("{}\n", r.report.dump(2));
    } else {
      fmt::print("{} on {} ({} examples)\n\n{}", f->run, f->data, r.metrics.n, metrics_text(r.metrics, r.labels));
      if (r.report.contains("scores")) fmt::print("\n{}", scores_text(r.report["scores"]));
      fmt::print("\nreport written to {}\n", report);
    }
    return 0;
  };
}

}  // namespace kotsu::cli
