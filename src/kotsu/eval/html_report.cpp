#include "kotsu/eval/html_report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>

#include "kotsu/eval/svg.hpp"

namespace kotsu {

namespace {

using svg::escape;
using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

const char* kStyle = R"(
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;margin:24px auto;max-width:1100px;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}.sub{color:#666;margin:0 0 16px}
table{border-collapse:collapse;margin:6px 0 12px}th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}
table.sortable th{cursor:pointer}table.sortable th:after{content:" \2195";color:#aaa}
.charts{display:flex;flex-wrap:wrap;gap:12px}.chart{margin:0}
.chart svg{background:#fff;border:1px solid #e4e4e4}
.chart-title{font-weight:600;font-size:13px}.tick{font-size:10px;fill:#555}.axis-label{font-size:11px;fill:#333}
.legend{font-size:10px;fill:#333}.grid{stroke:#eee}.frame{fill:none;stroke:#999}
.series{fill:none;stroke-width:2}.diagonal{stroke:#aaa;stroke-dasharray:4 4}
.bar{fill:#4e79a7}.bar.hot{fill:#e15759}.gap{fill:#e15759;opacity:.35}.cell{stroke:#fff}.cell-count{font-size:10px}
.warn{background:#fff3e0;border-left:4px solid #f28e2b;padding:8px 12px;margin:12px 0}
.ok{background:#eef6ee;border-left:4px solid #59a14f;padding:8px 12px;margin:12px 0}
.thumb{width:48px;height:48px;object-fit:contain;vertical-align:middle;image-rendering:pixelated;border:1px solid #ddd;margin-right:4px}.note{color:#666}.empty{fill:#999}code{background:#f4f4f4;padding:1px 4px}
)";

// Click a header of a .sortable table to sort by that column (numbers numerically, else as text).
const char* kScript = R"(
document.querySelectorAll("table.sortable th").forEach(function (th) {
  th.addEventListener("click", function () {
    var body = th.closest("table").tBodies[0], col = th.cellIndex, asc = th.dataset.order !== "asc";
    th.dataset.order = asc ? "asc" : "desc";
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].textContent, y = b.cells[col].textContent, nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
)";

std::string page(const std::string& title, const std::string& body) {
  return fmt::format("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{}</style></head>\n<body>\n{}\n<script>{}</script>\n</body></html>\n",
                     escape(title), kStyle, body, kScript);
}

double num_or_nan(const json& j) { return j.is_number() ? j.get<double>() : kNaN; }

std::string fmt_num(const json& j, int digits = 4) {
  if (!j.is_number()) return j.is_null() ? "undefined" : escape(j.dump());
  if (j.is_number_integer()) return std::to_string(j.get<int64_t>());
  return fmt::format("{:.{}f}", j.get<double>(), digits);
}

std::string str(const json& j, const char* key, const std::string& fallback = "") {
  if (!j.is_object() || !j.contains(key)) return fallback;
  const json& v = j[key];
  return v.is_string() ? v.get<std::string>() : v.dump();
}

// A table from rows of cells (already escaped HTML); numeric-looking cells are right-aligned.
std::string table(const std::string& id, const std::vector<std::string>& head, const std::vector<std::vector<std::string>>& rows, bool sortable) {
  std::string s = fmt::format("<table{}{}>", id.empty() ? "" : " id=\"" + escape(id) + "\"", sortable ? " class=\"sortable\"" : "");
  if (std::any_of(head.begin(), head.end(), [](const std::string& h) { return !h.empty(); })) {
    s += "<thead><tr>";
    for (const auto& h : head) s += "<th>" + h + "</th>";
    s += "</tr></thead>";
  }
  s += "<tbody>";
  for (const auto& r : rows) {
    s += "<tr>";
    for (const auto& c : r) {
      const bool numeric = !c.empty() && (std::isdigit(static_cast<unsigned char>(c[0])) || (c[0] == '-' && c.size() > 1 && std::isdigit(static_cast<unsigned char>(c[1]))));
      s += numeric ? "<td class=\"n\">" + c + "</td>" : "<td>" + c + "</td>";
    }
    s += "</tr>";
  }
  return s + "</tbody></table>";
}

std::vector<double> history_values(const json& history, const std::string& key) {
  std::vector<double> v;
  for (const auto& h : history) v.push_back(h.contains(key) ? num_or_nan(h[key]) : kNaN);
  return v;
}

std::string curves_chart(const json& curves, const std::string& id, const std::string& title, const std::string& xl, const std::string& yl, bool diagonal) {
  std::vector<svg::Series> series;
  for (const auto& c : curves) {
    svg::Series s;
    s.name = c.value("label", std::string("?"));
    if (c.contains("area") && c["area"].is_number()) s.name += fmt::format(" ({:.3f})", c["area"].get<double>());
    s.x = c.at("x").get<std::vector<double>>();
    s.y = c.at("y").get<std::vector<double>>();
    s.dashed = c.value("label", std::string()) == "micro average";
    series.push_back(std::move(s));
  }
  svg::Axes a;
  a.id = id;
  a.title = title;
  a.x_label = xl;
  a.y_label = yl;
  a.x_min = 0, a.x_max = 1, a.y_min = 0, a.y_max = 1.02;
  a.diagonal = diagonal;
  return svg::line_chart(series, a);
}

std::string evaluation_section(const json& e) {
  std::string s = fmt::format("<h2 id=\"evaluation\">Evaluation on {}</h2><p class=\"sub\">{} examples{}</p>", escape(str(e, "data", "?")),
                              fmt_num(e.value("n", json(0))), e.contains("skipped") ? fmt::format(", {} unreadable pictures left out", fmt_num(e["skipped"])) : "");
  const json sc = e.value("scores", json::object());
  auto ci = [&](const char* name) {
    if (!sc.contains("confidence_95") || !sc["confidence_95"].contains(name)) return std::string();
    const auto& iv = sc["confidence_95"][name];
    return fmt::format("{} .. {}", fmt_num(iv[0]), fmt_num(iv[1]));
  };
  std::vector<std::vector<std::string>> head_rows;
  head_rows.push_back({"accuracy", fmt_num(e.value("accuracy", json())), ci("accuracy")});
  if (e.contains("macro")) head_rows.push_back({"macro F1", fmt_num(e["macro"].value("f1", json())), ci("macro_f1")});
  if (e.contains("weighted")) head_rows.push_back({"weighted F1", fmt_num(e["weighted"].value("f1", json())), ""});
  if (sc.contains("roc_auc"))
    head_rows.push_back({sc["roc_auc"].is_object() ? "ROC-AUC (one-vs-rest, macro)" : "ROC-AUC",
                         fmt_num(sc["roc_auc"].is_object() ? sc["roc_auc"].value("macro", json()) : sc["roc_auc"]), ci("roc_auc")});
  if (sc.contains("average_precision")) head_rows.push_back({"mean average precision", fmt_num(sc["average_precision"].value("mean", json())), ""});
  if (sc.contains("top_k_accuracy"))
    for (auto& [k, v] : sc["top_k_accuracy"].items()) head_rows.push_back({"top-" + k + " accuracy", fmt_num(v), ""});
  if (sc.contains("log_loss")) head_rows.push_back({"log loss", fmt_num(sc["log_loss"]), ""});
  if (sc.contains("ece")) head_rows.push_back({"expected calibration error (15 bins)", fmt_num(sc["ece"]), ""});
  s += table("headline-metrics", {"metric", "value", "95% interval (bootstrap)"}, head_rows, false);
  // per-class table
  std::vector<std::string> labels = e.value("labels", std::vector<std::string>{});
  std::vector<std::vector<std::string>> pc;
  const json per = e.value("per_class", json::object());
  for (const auto& l : labels) {
    if (!per.contains(l)) continue;
    const json& p = per[l];
    auto score_of = [&](const char* group) {
      if (!sc.contains(group) || !sc[group].is_object() || !sc[group].contains("per_class")) return std::string("");
      return fmt_num(sc[group]["per_class"].value(l, json()));
    };
    pc.push_back({escape(l), fmt_num(p.value("precision", json())), fmt_num(p.value("recall", json())), fmt_num(p.value("f1", json())),
                  fmt_num(p.value("support", json())), score_of("average_precision"), score_of("roc_auc")});
  }
  s += "<h3>Per class</h3>" + table("per-class", {"class", "precision", "recall", "F1", "support", "average precision", "ROC-AUC"}, pc, true);
  // charts
  s += "<div class=\"charts\">";
  if (e.contains("confusion_matrix")) {
    auto cm = e["confusion_matrix"].get<std::vector<std::vector<int64_t>>>();
    if (cm.size() == labels.size()) s += svg::heat_map(cm, labels, "confusion-matrix", "Confusion matrix");
  }
  s += "</div><div class=\"charts\">";
  if (sc.contains("curves")) {
    s += curves_chart(sc["curves"].value("roc", json::array()), "roc-curve", "ROC curve (area)", "false positive rate", "true positive rate", true);
    s += curves_chart(sc["curves"].value("pr", json::array()), "pr-curve", "Precision-recall curve (average precision)", "recall", "precision", false);
  }
  if (sc.contains("reliability")) {
    std::vector<svg::Bin> bins;
    for (const auto& b : sc["reliability"])
      bins.push_back({b.value("low", 0.0), b.value("high", 0.0), b.value("confidence", 0.0), b.value("accuracy", 0.0), b.value("count", int64_t{0})});
    svg::Axes a;
    a.id = "reliability-diagram";
    a.title = "Reliability diagram (ECE " + fmt_num(sc.value("ece", json()), 3) + ")";
    a.x_label = "confidence of the predicted class";
    a.y_label = "accuracy";
    s += svg::reliability_chart(bins, a);
  }
  s += "</div>";
  if (!sc.contains("curves"))
    s += "<p class=\"note\">This evaluation report has no probability curves (written by an older kotsu): run <code>kotsu eval</code> again for ROC, precision-recall and reliability charts.</p>";
  return s;
}

// A file:// URL of a local file (absolute; characters with a meaning in URLs escaped).
std::string file_url(const std::string& path) {
  std::string url = "file://";
  for (char c : fs::absolute(path).lexically_normal().string()) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || std::strchr("/-._~", c)) url += c;
    else url += fmt::format("%{:02X}", u);
  }
  return url;
}

}  // namespace

OverfittingCheck check_overfitting(const json& history, const std::string& metric) {
  OverfittingCheck c;
  const auto m = history_values(history, "val_" + metric), vl = history_values(history, "val_loss"), tl = history_values(history, "train_loss");
  if (!history.is_array() || history.empty()) {
    c.message = "No epoch has finished in this run's history: overfitting cannot be judged (yet).";
    return c;
  }
  size_t best = m.size();
  for (size_t i = 0; i < m.size(); ++i)
    if (!std::isnan(m[i]) && (best == m.size() || m[i] > m[best])) best = i;
  if (best == m.size()) {
    c.message = "No validation metric per epoch (no validation split, or a head fit): overfitting cannot be judged from the history.";
    return c;
  }
  c.best_epoch = history[best].value("epoch", static_cast<int64_t>(best + 1));
  const size_t last = m.size() - 1, after = last - best;
  if (after < 2) {
    c.message = fmt::format("Validation {} was best at epoch {} of {}: no sign of overfitting.", metric, c.best_epoch, m.size());
    return c;
  }
  const double gap_best = vl[best] - tl[best], gap_last = vl[last] - tl[last];
  const bool gap_grew = !std::isnan(gap_best) && !std::isnan(gap_last) && gap_last > gap_best + std::max(0.02, 0.1 * std::abs(gap_best));
  const bool loss_rose = !std::isnan(vl[best]) && !std::isnan(vl[last]) && vl[last] > vl[best];
  if (gap_grew && loss_rose) {
    c.warn = true;
    c.message = fmt::format(
        "Overfitting: validation {} peaked at epoch {} ({:.4f}) and did not improve in the {} epochs after it, while the gap between "
        "validation and training loss grew from {:.4f} to {:.4f} and the validation loss rose from {:.4f} to {:.4f}. The run keeps the "
        "best checkpoint; fewer epochs, more regularisation (--weight-decay, --label-smoothing, augmentation), a smaller learning rate "
        "or more data would help.",
        metric, c.best_epoch, m[best], after, gap_best, gap_last, vl[best], vl[last]);
  } else {
    c.message = fmt::format("Validation {} peaked at epoch {} and did not improve in the {} epochs after it, but the validation loss "
                            "did not drift away from the training loss: a plateau rather than overfitting.",
                            metric, c.best_epoch, after);
  }
  return c;
}

std::string run_report_html(const json& run, const json& evaluation, const std::string& run_dir) {
  const json o = run.value("options", json::object());
  const std::string metric = o.value("metric", std::string("accuracy"));
  const json history = run.value("history", json::array());
  std::string b = fmt::format("<h1>kotsu run {}</h1><p class=\"sub\">{} · model {} · strategy {}</p>", escape(run_dir), escape(str(run, "task", "?")),
                              escape(str(o, "model", "?")), escape(str(o, "strategy", "?")));
  std::vector<std::vector<std::string>> sum = {
      {"status", escape(str(run, "status", "?"))},
      {"training data", escape(str(o, "data", "?"))},
      {"examples (train / validation)", fmt::format("{} / {}", fmt_num(run.value("n_train", json())), fmt_num(run.value("n_val", json())))},
      {"classes", std::to_string(run.value("labels", json::array()).size())},
      {"epochs run", std::to_string(history.size())},
      {"learning rate / batch size / weight decay", fmt::format("{} / {} / {}", fmt_num(o.value("lr", json())), fmt_num(o.value("batch_size", json())),
                                                                 fmt_num(o.value("weight_decay", json())))},
  };
  if (run.contains("best_metric"))
    sum.push_back({"best validation " + escape(str(run["best_metric"], "name", metric)),
                   fmt::format("{} (epoch {})", fmt_num(run["best_metric"].value("value", json())), fmt_num(run["best_metric"].value("epoch", json())))});
  if (run.value("stopped_early", false)) sum.push_back({"stopped early", "yes (patience " + fmt_num(o.value("patience", json())) + ")"});
  b += table("summary", {"", ""}, sum, false);
  const OverfittingCheck oc = check_overfitting(history, metric);
  b += fmt::format("<div id=\"overfitting\" class=\"{}\">{}</div>", oc.warn ? "warn" : "ok", escape(oc.message));
  // learning curves
  std::vector<double> epochs = history_values(history, "epoch");
  b += "<h2>Learning curves</h2><div class=\"charts\">";
  svg::Axes la;
  la.id = "learning-curves-loss";
  la.title = "Loss per epoch";
  la.x_label = "epoch";
  la.y_label = "loss";
  const bool few = history.size() <= 40;
  b += svg::line_chart({{"training loss", epochs, history_values(history, "train_loss"), few, false, ""},
                        {"validation loss", epochs, history_values(history, "val_loss"), few, false, ""}},
                       la);
  svg::Axes ma = la;
  ma.id = "learning-curves-metric";
  ma.title = "Validation metrics per epoch";
  ma.y_label = "score";
  std::vector<svg::Series> ms;
  for (const char* k : {"accuracy", "macro_f1", "weighted_f1"}) {
    auto v = history_values(history, std::string("val_") + k);
    if (std::any_of(v.begin(), v.end(), [](double x) { return !std::isnan(x); })) ms.push_back({std::string("validation ") + k, epochs, v, few, false, ""});
  }
  b += svg::line_chart(ms, ma) + "</div>";
  if (history.size() == 1) b += "<p class=\"note\">One epoch in the history (a head fit or a one-epoch run): the curves are single points.</p>";
  // evaluation
  if (evaluation.is_object() && !evaluation.empty()) {
    b += evaluation_section(evaluation);
  } else {
    b += fmt::format("<h2 id=\"evaluation\">Evaluation</h2><p class=\"note\">No evaluation report yet: run <code>kotsu eval --run {} --data TEST</code>, "
                     "then <code>kotsu report {}</code> again.</p>",
                     escape(run_dir), escape(run_dir));
  }
  // per-epoch table
  std::vector<std::vector<std::string>> rows;
  for (const auto& h : history)
    rows.push_back({fmt_num(h.value("epoch", json())), fmt_num(h.value("step", json())), fmt_num(h.value("train_loss", json())),
                    fmt_num(h.value("val_loss", json())), fmt_num(h.value("val_" + metric, json())), fmt_num(h.value("lr", json()), 6),
                    h.contains("seconds") ? fmt::format("{:.1f}", num_or_nan(h["seconds"])) : ""});
  b += "<h2>Per epoch</h2>" + table("history", {"epoch", "step", "training loss", "validation loss", "validation " + escape(metric), "learning rate", "seconds"}, rows, true);
  b += fmt::format("<p class=\"note\">Written by kotsu {} from {}/run.json{}.</p>", escape(str(run, "kotsu_version", "?")), escape(run_dir),
                   evaluation.is_object() && !evaluation.empty() ? " and the evaluation report" : "");
  return page("kotsu report: " + run_dir, b);
}

std::string audit_report_html(const json& a, const std::string& data) {
  const bool pictures = a.value("kind", std::string()) == "pictures";
  std::string b = fmt::format("<h1>kotsu audit of {}</h1><p class=\"sub\">{} {}, {} classes, imbalance ratio {:.1f} (largest / smallest class)</p>",
                              escape(data), fmt_num(a.value("rows", json(0))), pictures ? "pictures" : "rows", a.value("classes", json::object()).size(),
                              a.value("imbalance_ratio", 0.0));
  // class counts
  std::vector<std::string> labels;
  std::vector<double> counts;
  const json classes = a.value("classes", json::object());
  for (auto& [l, c] : classes.items()) labels.push_back(l), counts.push_back(c.get<double>());
  double mean = 0;
  for (double c : counts) mean += c;
  mean = counts.empty() ? 0 : mean / static_cast<double>(counts.size());
  std::vector<bool> low;
  for (double c : counts) low.push_back(c < 0.5 * mean);
  svg::Axes ca;
  ca.id = "class-counts";
  ca.title = "Examples per class (red: under half the mean)";
  ca.y_label = "examples";
  ca.width = std::clamp(80 + 30 * static_cast<int>(counts.size()), 480, 1060);
  ca.height = 360;
  b += "<h2>Classes</h2><div class=\"charts\">" + svg::bar_chart(labels, counts, ca, low) + "</div>";
  // findings summary
  auto count_of = [&](const char* key, const char* field) { return a.contains(key) ? fmt_num(a[key].value(field, json(0))) : std::string("-"); };
  std::vector<std::vector<std::string>> f;
  f.push_back({"exact duplicates (extra rows)", count_of("exact_duplicates", "extra_rows")});
  f.push_back({"identical inputs with different labels (groups)", count_of("conflicting_labels", "groups")});
  f.push_back({"near-duplicate pairs", count_of("near_duplicates", "pairs")});
  f.push_back({"near-duplicate pairs with different labels", count_of("near_duplicates", "with_different_labels")});
  if (pictures) {
    f.push_back({"unreadable pictures", count_of("unreadable", "count")});
    f.push_back({"blank (single-colour) pictures", count_of("blank", "count")});
    f.push_back({"tiny pictures", count_of("tiny", "count")});
  } else {
    f.push_back({"empty texts", count_of("empty", "count")});
    f.push_back({"too short texts", count_of("too_short", "count")});
    if (a.contains("too_long")) f.push_back({"too long texts (truncated)", count_of("too_long", "count")});
  }
  if (a.contains("leakage")) {
    f.push_back({"leakage into the test set: identical", count_of("leakage", "exact")});
    f.push_back({"leakage into the test set: near-identical", count_of("leakage", "near")});
  }
  if (a.contains("likely_mislabels")) f.push_back({"likely mislabelled (confident learning)", count_of("likely_mislabels", "suspects")});
  b += "<h2>Findings</h2>" + table("findings", {"check", "count"}, f, false);
  // example tables
  auto thumb = [&](const std::string& file) {  // a picture that exists on disk, shown small
    std::error_code ec;
    if (!pictures || !fs::is_regular_file(file, ec)) return std::string();
    return fmt::format("<img class=\"thumb\" src=\"{}\" alt=\"\" loading=\"lazy\"> ", escape(file_url(file)));
  };
  auto cell_of = [&](const json& r) {
    std::string where = r.contains("file") ? escape(str(r, "file")) : "";
    if (r.contains("line") && r["line"].is_number() && r["line"].get<int64_t>() > 0) where += ":" + fmt_num(r["line"]);
    std::string s = where + " <b>" + escape(str(r, "label")) + "</b>";
    if (r.contains("text")) s += " " + escape(str(r, "text"));
    if (r.contains("size")) s += " " + escape(str(r, "size"));
    if (r.contains("reason")) s += " " + escape(str(r, "reason"));
    if (r.contains("file") && !r.contains("reason")) s = thumb(str(r, "file")) + s;
    return s;
  };
  // examples: a finding's listed rows (each a row, a group of rows, or a pair {a, b, distance})
  auto group_table = [&](const json& examples, const std::string& title, const std::string& id) {
    if (!examples.is_array() || examples.empty()) return std::string();
    std::vector<std::vector<std::string>> rows;
    for (const auto& g : examples) {
      std::string members;
      if (g.is_array()) {
        for (const auto& r : g) members += (members.empty() ? "" : "<br>") + cell_of(r);
      } else if (g.contains("a")) {
        members = cell_of(g["a"]) + "<br>" + cell_of(g["b"]) +
                  fmt::format(" <span class=\"note\">(hash distance {}{})</span>", fmt_num(g.value("distance", json())),
                              g.contains("similarity") ? ", similarity " + fmt_num(g["similarity"], 3) : "");
      } else {
        members = cell_of(g);
      }
      rows.push_back({members});
    }
    return fmt::format("<h3>{}</h3>", escape(title)) + table(id, {"rows (file:line, label, content)"}, rows, false);
  };
  auto listed = [&](const char* key, const char* field = "examples") {
    return a.contains(key) && a[key].is_object() ? a[key].value(field, json::array()) : json::array();
  };
  b += group_table(listed("exact_duplicates"), "Exact duplicates", "exact-duplicates");
  b += group_table(listed("conflicting_labels"), "Identical inputs with different labels", "conflicting-labels");
  if (a.contains("near_duplicates") && a["near_duplicates"].contains("note"))
    b += "<p class=\"note\">" + escape(str(a["near_duplicates"], "note")) + "</p>";
  b += group_table(listed("near_duplicates"), "Near duplicates", "near-duplicates");
  for (const auto& [k, title] : std::vector<std::pair<std::string, std::string>>{{"unreadable", "Unreadable pictures"}, {"blank", "Blank pictures"},
                                                                                {"tiny", "Tiny pictures"}, {"empty", "Empty texts"},
                                                                                {"too_short", "Too short texts"}, {"too_long", "Too long texts"}})
    b += group_table(listed(k.c_str()), title, "finding-" + k);
  b += group_table(listed("leakage"), "Leakage: identical rows in the training and test sets", "leakage");
  b += group_table(listed("leakage", "near_examples"), "Leakage: near-identical rows in the training and test sets", "near-leakage");
  if (a.contains("likely_mislabels")) {
    const auto& lm = a["likely_mislabels"];
    std::vector<std::vector<std::string>> rows;
    for (const auto& r : lm.value("ranking", json::array()))
      rows.push_back({fmt_num(r.value("rank", json())), r.contains("file") ? thumb(str(r, "file")) + escape(str(r, "file")) : "line " + fmt_num(r.value("line", json())),
                      escape(str(r, "label")), fmt_num(r.value("label_probability", json()), 3), escape(str(r, "suggested")),
                      fmt_num(r.value("suggested_probability", json()), 3), r.value("confident_joint", false) ? "yes" : "", escape(str(r, "text"))});
    b += fmt::format("<h2>Likely mislabelled</h2><p class=\"sub\">Out-of-fold probabilities from {}; rows ranked by the probability of their given label, lowest first. "
                     "\"flagged\": the confident joint counts the row as a label issue.</p>",
                     escape(str(lm, "from")));
    b += table("likely-mislabels", {"rank", "row", "label", "p(label)", "suggested", "p(suggested)", "flagged", "content"}, rows, true);
  }
  return page("kotsu audit: " + data, b);
}

}  // namespace kotsu

namespace kotsu {

namespace {

// Complete trials of a tune summary, with their values.
std::vector<const nlohmann::json*> complete_trials(const nlohmann::json& tune) {
  std::vector<const nlohmann::json*> out;
  if (!tune.contains("trials") || !tune["trials"].is_array()) return out;
  for (const auto& t : tune["trials"])  // pointers into `tune` itself, not into a copy
    if (t.value("state", std::string()) == "complete" && t.contains("value") && t["value"].is_number()) out.push_back(&t);
  return out;
}

// The group of a trial for a parameter: the categorical value, the quartile of a numeric one, or not set.
std::string importance_group(const nlohmann::json& params, const std::string& name, const std::vector<double>& cuts) {
  if (!params.contains(name)) return "(not set)";
  const auto& v = params[name];
  if (!v.is_number() || cuts.empty()) return v.dump();
  const double x = v.get<double>();
  size_t q = 0;
  while (q < cuts.size() && x > cuts[q]) ++q;
  return "q" + std::to_string(q);
}

}  // namespace

std::vector<std::pair<std::string, double>> parameter_importance(const nlohmann::json& tune) {
  std::vector<std::pair<std::string, double>> out;
  const auto trials = complete_trials(tune);
  if (trials.size() < 2) return out;
  double mean = 0;
  for (const auto* t : trials) mean += (*t)["value"].get<double>();
  mean /= static_cast<double>(trials.size());
  double total = 0;
  for (const auto* t : trials) total += std::pow((*t)["value"].get<double>() - mean, 2);
  const nlohmann::json space = tune.value("space", nlohmann::json::object());
  for (auto& [name, spec] : space.items()) {
    std::vector<double> cuts;  // quartile boundaries of a numeric parameter
    if (spec.value("type", std::string()) != "categorical") {
      std::vector<double> xs;
      for (const auto* t : trials)
        if ((*t)["params"].contains(name)) xs.push_back(spec.value("log", false) ? std::log((*t)["params"][name].get<double>()) : (*t)["params"][name].get<double>());
      std::sort(xs.begin(), xs.end());
      for (int q = 1; q < 4 && !xs.empty(); ++q) cuts.push_back(xs[std::min(xs.size() - 1, xs.size() * static_cast<size_t>(q) / 4)]);
      if (spec.value("log", false))
        for (auto& c : cuts) c = std::exp(c);
    }
    std::map<std::string, std::pair<double, int>> groups;
    for (const auto* t : trials) {
      auto& g = groups[importance_group((*t)["params"], name, cuts)];
      g.first += (*t)["value"].get<double>();
      g.second += 1;
    }
    double between = 0;
    for (auto& [k, g] : groups) between += g.second * std::pow(g.first / g.second - mean, 2);
    out.emplace_back(name, total > 0 ? between / total : 0.0);
  }
  return out;
}

std::string tune_report_html(const nlohmann::json& tune, const std::string& out_dir) {
  const bool maximize = tune.value("direction", std::string("maximize")) == "maximize";
  const std::string metric = tune.value("metric", std::string("metric"));
  const auto& trials = tune.value("trials", nlohmann::json::array());
  std::string b = fmt::format("<h1>kotsu tune {}</h1><p class=\"sub\">{} {} · sampler {} · pruner {} · {} trials of {} · {} {}s run</p>",
                              escape(out_dir), maximize ? "maximise" : "minimise", escape(metric), escape(str(tune, "sampler", "?")),
                              escape(str(tune, "pruner", "?")), trials.size(), fmt_num(tune.value("budget", nlohmann::json())),
                              fmt_num(tune.value("reports", nlohmann::json())), escape(str(tune, "report_unit", "epoch")));
  if (tune.contains("best"))
    b += fmt::format("<div class=\"ok\" id=\"best\">Best: trial {} with {} {} ({}), run in <code>{}</code>.</div>", fmt_num(tune["best"]["number"]),
                     escape(metric), fmt_num(tune["best"]["value"]), escape(tune["best"]["params"].dump()), escape(str(tune["best"], "run")));
  if (tune.contains("final")) {
    const auto& fin = tune["final"];
    b += fmt::format("<div id=\"final\"><h2>Final model</h2><p>Trial {}'s configuration retrained on train+validation ({} examples, {} epoch(s)) in "
                     "<code>{}</code>.",
                     fmt_num(fin["trial"]), fmt_num(fin.value("examples", nlohmann::json())), fmt_num(fin.value("epochs", nlohmann::json())),
                     escape(str(fin, "run")));
    if (fin.contains("test"))
      b += fmt::format(" On the test file <code>{}</code> ({} examples): {} <b>{}</b> (validation {}), accuracy {}, macro-F1 {}.",
                       escape(str(fin["test"], "data")), fmt_num(fin["test"]["examples"]), escape(metric), fmt_num(fin["test"]["value"]),
                       fmt_num(fin["validation_value"]), fmt_num(fin["test"]["accuracy"]), fmt_num(fin["test"]["macro_f1"]));
    else
      b += " No test file was given (<code>--test</code>), so it has not been evaluated on unseen data.";
    b += "</p></div>";
  }
  // leaderboard
  std::vector<std::vector<std::string>> rows;
  size_t rank = 0;
  for (const auto& n : tune.value("leaderboard", nlohmann::json::array())) {
    const auto& t = trials[n.get<size_t>()];
    rows.push_back({std::to_string(++rank), fmt_num(t["number"]), fmt_num(t["value"]), escape(t["params"].dump()), fmt_num(t.value("reports", nlohmann::json())),
                    t.contains("seconds") ? fmt::format("{:.1f}", t["seconds"].get<double>()) : ""});
  }
  b += "<h2>Leaderboard</h2>" + table("leaderboard", {"rank", "trial", escape(metric), "parameters", escape(str(tune, "report_unit", "epoch")) + "s", "seconds"}, rows, true);
  // optimisation history
  svg::Series values{"trial value", {}, {}, true, false, ""}, best{"best so far", {}, {}, false, false, ""}, pruned{"pruned (last report)", {}, {}, true, false, "#bab0ac"};
  double so_far = std::nan("");
  for (const auto& t : trials) {
    const double x = t["number"].get<double>();
    if (!t.contains("value") || !t["value"].is_number()) continue;
    const double v = t["value"].get<double>();
    if (t["state"] == "pruned") {
      pruned.x.push_back(x), pruned.y.push_back(v);
      continue;
    }
    if (t["state"] != "complete") continue;
    values.x.push_back(x), values.y.push_back(v);
    if (std::isnan(so_far) || (maximize ? v > so_far : v < so_far)) so_far = v;
    best.x.push_back(x), best.y.push_back(so_far);
  }
  svg::Axes ha;
  ha.id = "optimization-history";
  ha.title = "Optimisation history";
  ha.x_label = "trial";
  ha.y_label = metric;
  ha.width = 520;
  b += "<h2>Search</h2><div class=\"charts\">" + svg::line_chart({values, best, pruned}, ha);
  // importance
  std::vector<std::string> names;
  std::vector<double> shares;
  for (auto& [n, v] : parameter_importance(tune)) names.push_back(n), shares.push_back(v);
  svg::Axes ia;
  ia.id = "parameter-importance";
  ia.title = "Parameter importance (share of variance explained)";
  ia.y_label = "share";
  ia.y_min = 0, ia.y_max = 1;
  b += svg::bar_chart(names, shares, ia) + "</div>";
  // parallel coordinates: one axis per parameter, trials as lines coloured by value (dark = better)
  const auto done = complete_trials(tune);
  const auto space = tune.value("space", nlohmann::json::object());
  const int W = 900, H = 340, top = 40, bottom = 40, left = 40;
  const size_t k = space.size();
  std::string pc = fmt::format("<figure class=\"chart\" id=\"parallel-coordinates\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\">"
                               "<title>Parallel coordinates</title><text x=\"10\" y=\"18\" class=\"chart-title\">Parallel coordinates (complete trials; darker = better)</text>",
                               W, H, W, H);
  double lo = INFINITY, hi = -INFINITY;
  for (const auto* t : done) lo = std::min(lo, (*t)["value"].get<double>()), hi = std::max(hi, (*t)["value"].get<double>());
  auto axis_x = [&](size_t i) { return left + (k <= 1 ? 0.0 : static_cast<double>(i) * (W - 2 * left) / static_cast<double>(k - 1)); };
  size_t i = 0;
  for (auto& [name, spec] : space.items()) {
    const double x = axis_x(i++);
    pc += fmt::format("<line class=\"frame\" x1=\"{:.1f}\" y1=\"{}\" x2=\"{:.1f}\" y2=\"{}\"/><text class=\"tick\" x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>", x, top, x,
                      H - bottom, x, H - bottom + 16, escape(name));
  }
  auto position = [&](const nlohmann::json& spec, const nlohmann::json& v) -> double {  // 0 (bottom) .. 1 (top)
    if (spec.value("type", std::string()) == "categorical") {
      const auto& ch = spec["choices"];
      for (size_t c = 0; c < ch.size(); ++c)
        if (ch[c] == v) return ch.size() == 1 ? 0.5 : static_cast<double>(c) / static_cast<double>(ch.size() - 1);
      return 0.5;
    }
    const bool lg = spec.value("log", false);
    const double a = spec["low"].get<double>(), z = spec["high"].get<double>(), x = v.get<double>();
    const double p = lg ? (std::log(x) - std::log(a)) / (std::log(z) - std::log(a)) : (x - a) / (z - a);
    return std::isfinite(p) ? std::clamp(p, 0.0, 1.0) : 0.5;
  };
  for (const auto* t : done) {
    const double v = (*t)["value"].get<double>();
    double goodness = hi > lo ? (v - lo) / (hi - lo) : 1.0;
    if (!maximize) goodness = 1 - goodness;
    const int shade = static_cast<int>(std::lround(220 - 180 * goodness));
    std::string path;
    size_t a = 0;
    for (auto& [name, spec] : space.items()) {
      const double x = axis_x(a++);
      if (!(*t)["params"].contains(name)) continue;  // an inactive conditional parameter: the line skips the axis
      const double y = H - bottom - position(spec, (*t)["params"][name]) * (H - top - bottom);
      path += fmt::format("{}{:.1f},{:.1f}", path.empty() ? "M" : " L", x, y);
    }
    pc += fmt::format("<path class=\"series\" d=\"{}\" stroke=\"rgb({},{},255)\" stroke-width=\"1.5\"><title>trial {}: {} {}</title></path>", path, shade,
                      shade, fmt_num((*t)["number"]), escape(metric), fmt_num((*t)["value"]));
  }
  pc += "</svg></figure>";
  b += "<div class=\"charts\">" + pc + "</div>";
  b += fmt::format("<p class=\"note\">Written by kotsu from {}/tune.json; trials are train runs in {}/trial-N.</p>", escape(out_dir), escape(out_dir));
  return page("kotsu tune: " + out_dir, b);
}

}  // namespace kotsu
