// kotsu drift --run RUN --log predictions.jsonl: has what the server sees moved away from what the run was
// validated on? Population stability index of the predicted label, the confidence and the input length
// (eval/drift), against the run's predictions on its validation texts (train/drift_reference).
#include <fmt/format.h>

#include "commands.hpp"
#include "kotsu/core/runtime.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/serve/prediction_log.hpp"
#include "kotsu/train/drift_reference.hpp"

namespace kotsu::cli {

namespace {
struct DriftFlags {
  std::string run, log, model, reference, out, device = "cpu";
  int64_t batch = 64;
  int threads = 0;
};
}  // namespace

Action add_drift(CLI::App& app) {
  auto f = std::make_shared<DriftFlags>();
  auto* c = app.add_subcommand("drift", "compare a prediction log (kotsu serve --log) with the run's validation data; says when to retrain");
  c->add_option("--run", f->run, "the run being served (a directory written by kotsu train)")->required();
  c->add_option("--log", f->log, "the server's prediction log (JSONL)")->required();
  c->add_option("--model", f->model, "the model's name in the log (needed when the log holds several)");
  c->add_option("--reference", f->reference, "reference texts instead of the run's validation data (a CSV/TSV/JSONL with the run's text column)");
  c->add_option("--out", f->out, "write the report as JSON");
  c->add_option("--batch-size", f->batch, "texts per forward pass")->capture_default_str();
  c->add_option("--threads", f->threads, "CPU threads (0 = all cores)");
  c->add_option("--device", f->device, "cpu or cuda[:N]")->capture_default_str();
  return [f]() {
    check_device(f->device);
    runtime_init(f->threads);
    const DriftSample live = read_prediction_log(f->log, f->model);
    std::string source;
    const DriftSample reference = run_reference_sample(f->run, f->reference, f->batch, f->device, &source);
    const DriftReport r = drift_report(reference, live);
    fmt::print("reference: {}\n{}", source, r.text());
    if (!f->out.empty()) {
      nlohmann::ordered_json j = r.to_json();
      j["run"] = f->run;
      j["log"] = f->log;
      j["reference"] = source;
      write_atomic(f->out, j.dump(2) + "\n");
    }
    return 0;
  };
}

}  // namespace kotsu::cli
