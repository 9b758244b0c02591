// kotsu/eval/html_report: self-contained HTML pages (inline SVG charts from eval/svg, inline CSS, a few
// lines of inline JavaScript to sort tables; nothing fetched from the network) for a training run with its
// evaluation (`kotsu report`) and for a data audit (`kotsu audit`). Pure functions of the JSON files that
// training, evaluation and the audit write.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace kotsu {

// Overfitting in a run's per-epoch history (train_loss, val_loss, val_<metric>): the validation metric
// peaked at least two epochs before the end and did not improve after, while the gap between validation
// and training loss grew and the validation loss rose. `message` explains either way.
struct OverfittingCheck {
  bool warn = false;
  int64_t best_epoch = 0;
  std::string message;
};
OverfittingCheck check_overfitting(const nlohmann::json& history, const std::string& metric);

// run: run.json of `kotsu train`; evaluation: a report of `kotsu eval` (null: the page says how to make
// one). Sections: summary, overfitting check, learning curves (loss; validation metrics), and for the
// evaluation the headline metrics with 95% intervals, confusion-matrix heat map, per-class table, ROC and
// precision-recall curves and the reliability diagram; the per-epoch table last.
std::string run_report_html(const nlohmann::json& run, const nlohmann::json& evaluation, const std::string& run_dir);

// audit: audit.json of `kotsu audit` (texts or pictures): summary, class-count chart, every finding as a
// table, and the likely-mislabel ranking. Pictures that exist on disk are shown as thumbnails linked by
// file:// URL (relative paths taken from the current directory), so that page is not self-contained.
std::string audit_report_html(const nlohmann::json& audit, const std::string& data);

// tune: tune.json of `kotsu tune`: summary, leaderboard, optimisation history (every trial's value and the
// best so far), parameter importance (the share of the variance of complete trials' values explained by
// each parameter: its values, or quartiles of a numeric one, as groups; "(not set)" for trials where a
// conditional parameter was inactive) and parallel coordinates (one line per complete trial).
std::string tune_report_html(const nlohmann::json& tune, const std::string& out_dir);
// The importance of each parameter as above, in [0, 1]; parameters in the space's order.
std::vector<std::pair<std::string, double>> parameter_importance(const nlohmann::json& tune);

}  // namespace kotsu
