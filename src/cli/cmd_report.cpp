// kotsu report RUN [--eval FILE] [--out FILE]: one self-contained HTML page of a run (learning curves,
// overfitting check) and its evaluation (metrics with intervals, confusion matrix, per-class table, ROC,
// precision-recall and reliability charts), from run.json and an eval report (eval/html_report).
#include <fmt/format.h>

#include <filesystem>

#include "commands.hpp"
#include "kotsu/io/run_status.hpp"
#include "kotsu/core/error.hpp"
#include "kotsu/eval/html_report.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/io/json_file.hpp"

namespace kotsu::cli {

namespace fs = std::filesystem;

namespace {

// The newest eval-*.json of a run directory ("" when there is none).
std::string newest_eval(const std::string& run) {
  std::string best;
  fs::file_time_type when{};
  for (const auto& e : fs::directory_iterator(run)) {
    const std::string name = e.path().filename().string();
    if (!e.is_regular_file() || name.rfind("eval-", 0) != 0 || e.path().extension() != ".json") continue;
    if (best.empty() || e.last_write_time() > when) best = e.path().string(), when = e.last_write_time();
  }
  return best;
}

}  // namespace

Action add_report(CLI::App& app) {
  struct Flags {
    std::string run, eval, out;
  };
  auto f = std::make_shared<Flags>();
  auto* c = app.add_subcommand("report", "write one self-contained HTML page of a run and its evaluation");
  c->add_option("run", f->run, "run directory written by kotsu train")->required();
  c->add_option("--eval", f->eval, "evaluation report of kotsu eval (default: the newest RUN/eval-*.json)");
  c->add_option("--out", f->out, "HTML file to write (default: RUN/report.html)");
  return [f]() {
    if (!fs::is_directory(f->run)) throw Error(f->run, "", "is not a run directory");
    const std::string run_json = (fs::path(f->run) / "run.json").string();
    if (!fs::exists(run_json)) throw Error(f->run, "run.json", "missing: not a run directory written by kotsu train");
    nlohmann::json run = read_json(run_json);
    if (const auto w = unfinished_run_warning(f->run); !w.empty()) fmt::print(stderr, "kotsu: {}\n", w);
    std::string eval = f->eval.empty() ? newest_eval(f->run) : f->eval;
    nlohmann::json evaluation;
    if (!eval.empty()) {
      evaluation = read_json(eval);
      if (!evaluation.is_object() || !evaluation.contains("confusion_matrix") || !evaluation.contains("labels"))
        throw Error(eval, "confusion_matrix", "missing: not an evaluation report of kotsu eval");
    }
    const std::string out = f->out.empty() ? (fs::path(f->run) / "report.html").string() : f->out;
    write_atomic(out, run_report_html(run, evaluation, f->run));
    const OverfittingCheck oc = check_overfitting(run.value("history", nlohmann::json::array()),
                                                  run.value("options", nlohmann::json::object()).value("metric", std::string("accuracy")));
    fmt::print("{}\n", oc.message);
    if (eval.empty()) fmt::print("no evaluation report in {}: run kotsu eval --run {} --data TEST for the metric charts\n", f->run, f->run);
    else fmt::print("evaluation: {}\n", eval);
    fmt::print("report written to {}\n", out);
    return 0;
  };
}

}  // namespace kotsu::cli
