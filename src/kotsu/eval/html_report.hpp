// kotsu/eval/html_report: self-contained HTML pages (inline SVG charts from eval/svg, inline CSS, a few
// lines of inline JavaScript to sort tables; nothing fetched from the network) for a training run with its
// evaluation (`kotsu report`) and for a data audit (`kotsu audit`). Pure functions of the JSON files that
// training, evaluation and the audit write.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

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

}  // namespace kotsu
