// kotsu audit --data FILE [--test FILE] [--model DIR | --oof oof.jsonl]: data problems before training
// (data/audit) and, with a model, rows ranked by how likely their label is wrong (out-of-fold
// probabilities from a `kotsu cv` run, made here with the head strategy when only --model is given).
#include <fmt/format.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "kotsu/core/error.hpp"
#include "kotsu/core/runtime.hpp"
#include "kotsu/data/audit.hpp"
#include "kotsu/data/text_dataset.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/models/image_model.hpp"
#include "kotsu/text/tokenizer.hpp"
#include "kotsu/train/cross_validate.hpp"
#include "kotsu/train/evaluate.hpp"

namespace kotsu::cli {

namespace fs = std::filesystem;

namespace {

struct AuditFlags {
  std::string data, test, model, oof, out = "audit";
  TextColumns cols;
  int64_t folds = 5, max_len = 0, top = 20;
  double near = 0.8;
  int threads = 0;
  bool json = false;
};

// Out-of-fold probabilities [rows x labels] and the labels, from oof.jsonl (in row order).
void read_oof(const std::string& path, size_t rows, std::vector<std::string>& labels, std::vector<double>& probs, std::vector<int64_t>& y) {
  const std::string text = read_file(path);
  size_t pos = 0, line = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    const std::string s = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line;
    if (s.empty()) continue;
    nlohmann::ordered_json j;
    try {
      j = nlohmann::ordered_json::parse(s);
      if (labels.empty())
        for (auto& [k, v] : j.at("probabilities").items()) labels.push_back(k);
      for (const auto& l : labels) probs.push_back(j.at("probabilities").at(l).get<double>());
      y.push_back(std::find(labels.begin(), labels.end(), j.at("label").get<std::string>()) - labels.begin());
    } catch (const nlohmann::json::exception& e) {
      throw Error(path, "line " + std::to_string(line), std::string("not an out-of-fold prediction: ") + e.what());
    }
    if (y.back() >= static_cast<int64_t>(labels.size())) throw Error(path, "line " + std::to_string(line), "label without a probability");
  }
  if (y.size() != rows) throw Error(path, "", fmt::format("has {} rows, the data {}: not this data's cv", y.size(), rows));
}

}  // namespace

Action add_audit(CLI::App& app) {
  auto f = std::make_shared<AuditFlags>();
  auto* c = app.add_subcommand("audit", "find duplicates, conflicting labels, leakage, bad lengths, imbalance and likely mislabels in text data");
  c->add_option("--data", f->data, "the labelled texts (.csv, .tsv, .jsonl)")->required();
  c->add_option("--test", f->test, "a test file to check for rows shared with --data (leakage)");
  c->add_option("--model", f->model, "rank likely mislabels with this model (a head-strategy cv, unless --oof is given); also checks lengths against its tokenizer");
  c->add_option("--oof", f->oof, "out-of-fold predictions (oof.jsonl of kotsu cv on the same data) to rank likely mislabels");
  c->add_option("--folds", f->folds, "folds of the cv run for --model")->capture_default_str();
  c->add_option("--out", f->out, "directory for audit.json (and the cv run for --model)")->capture_default_str();
  c->add_option("--text-col", f->cols.text, "text column")->capture_default_str();
  c->add_option("--label-col", f->cols.label, "label column")->capture_default_str();
  c->add_option("--max-len", f->max_len, "texts with more tokens are reported as too long (default: the model's max_len)");
  c->add_option("--near", f->near, "Jaccard similarity of character 5-grams for near duplicates")->capture_default_str();
  c->add_option("--top", f->top, "likely mislabels to print")->capture_default_str();
  c->add_option("--threads", f->threads, "CPU threads (0 = all cores)");
  c->add_flag("--json", f->json, "print the JSON report");
  return [f]() {
    runtime_init(f->threads);
    if (fs::is_directory(f->data)) throw Error(f->data, "", "audit reads text datasets (.csv, .tsv, .jsonl); picture folders are not audited yet");
    TextDataset d = load_text_dataset(f->data, f->cols);
    std::vector<AuditRow> rows;
    for (size_t i = 0; i < d.size(); ++i) rows.push_back({d.texts[i], d.labels[i], f->data, d.lines[i]});
    if (!f->test.empty()) {
      TextDataset t = load_text_dataset(f->test, f->cols);
      for (size_t i = 0; i < t.size(); ++i) rows.push_back({t.texts[i], t.labels[i], f->test, t.lines[i]});
    }
    AuditOptions o;
    o.near_threshold = f->near;
    std::vector<int64_t> tokens;
    if (!f->model.empty() && !is_image_model_dir(f->model)) {
      o.max_tokens = f->max_len > 0 ? f->max_len : run_max_len(f->model);
      Tokenizer tok = Tokenizer::load(f->model);
      for (const auto& r : rows) tokens.push_back(static_cast<int64_t>(tok.encode(r.text).ids.size()));
    } else if (f->max_len > 0) {
      throw Error("options", "max_len", "needs --model (its tokenizer counts the tokens)");
    }
    nlohmann::json rep = audit_texts(rows, tokens, o);
    std::string oof = f->oof;
    if (oof.empty() && !f->model.empty()) {
      TrainOptions to;
      to.model = f->model;
      to.data = f->data;
      to.columns = f->cols;
      to.strategy = "head";
      to.out = (fs::path(f->out) / "cv").string();
      to.threads = f->threads;
      CvOptions cv;
      cv.folds = f->folds;
      TrainHooks hooks;
      hooks.quiet = f->json;
      cross_validate(to, cv, hooks);
      oof = (fs::path(to.out) / "oof.jsonl").string();
    }
    std::vector<nlohmann::json> suspects;
    if (!oof.empty()) {
      std::vector<std::string> labels;
      std::vector<double> probs;
      std::vector<int64_t> y;
      read_oof(oof, d.size(), labels, probs, y);
      MislabelRanking r = rank_mislabels(y, probs, static_cast<int64_t>(labels.size()));
      nlohmann::ordered_json list = nlohmann::ordered_json::array();
      const size_t k = labels.size();
      for (size_t rank = 0; rank < r.order.size() && rank < std::max<size_t>(r.suspects, static_cast<size_t>(f->top)); ++rank) {
        const size_t i = r.order[rank];
        const double* p = probs.data() + i * k;
        const size_t best = static_cast<size_t>(std::max_element(p, p + k) - p);
        list.push_back({{"rank", rank + 1}, {"row", i}, {"line", d.lines[i]}, {"label", labels[static_cast<size_t>(y[i])]},
                        {"label_probability", p[y[i]]}, {"suggested", labels[best]}, {"suggested_probability", p[best]},
                        {"confident_joint", static_cast<bool>(r.suspect[i])}, {"text", d.texts[i].substr(0, 200)}});
      }
      rep["likely_mislabels"] = {{"from", oof}, {"suspects", r.suspects}, {"ranking", list}};
      std::vector<size_t> order = r.order;
      rep["mislabel_order"] = order;  // every row, most suspicious first
    }
    make_dirs(f->out);
    const std::string path = (fs::path(f->out) / "audit.json").string();
    write_atomic(path, rep.dump(2) + "\n");
    if (f->json) {
      fmt::print("{}\n", rep.dump(2));
      return 0;
    }
    std::string s = fmt::format("audit of {}: {} rows, {} classes, imbalance ratio {:.1f} (largest / smallest class)\n", f->data,
                                rep["rows"].get<size_t>(), rep["classes"].size(), rep["imbalance_ratio"].get<double>());
    s += fmt::format("  exact duplicates: {} extra rows; conflicting labels: {} groups of identical texts\n",
                     rep["exact_duplicates"]["extra_rows"].get<size_t>(), rep["conflicting_labels"]["groups"].get<size_t>());
    s += fmt::format("  near duplicates (Jaccard >= {}): {} pairs, {} with different labels\n", f->near,
                     rep["near_duplicates"]["pairs"].get<size_t>(), rep["near_duplicates"]["with_different_labels"].get<size_t>());
    s += fmt::format("  empty texts: {}; shorter than {} characters: {}", rep["empty"]["count"].get<size_t>(), o.min_chars,
                     rep["too_short"]["count"].get<size_t>());
    if (rep.contains("too_long")) s += fmt::format("; longer than {} tokens (truncated): {}", o.max_tokens, rep["too_long"]["count"].get<size_t>());
    s += "\n";
    if (rep.contains("leakage"))
      s += fmt::format("  leakage into {}: {} identical, {} near-identical rows\n", f->test, rep["leakage"]["exact"].get<size_t>(),
                       rep["leakage"]["near"].get<size_t>());
    if (rep.contains("likely_mislabels")) {
      const auto& lm = rep["likely_mislabels"];
      s += fmt::format("  likely mislabelled (confident learning on {}): {} rows; the {} least likely labels:\n", lm["from"].get<std::string>(),
                       lm["suspects"].get<size_t>(), std::min<size_t>(static_cast<size_t>(f->top), lm["ranking"].size()));
      for (size_t i = 0; i < lm["ranking"].size() && i < static_cast<size_t>(f->top); ++i) {
        const auto& e = lm["ranking"][i];
        s += fmt::format("    line {:>6}  {} ({:.2f}) -> {} ({:.2f})  {}\n", e["line"].get<size_t>(), e["label"].get<std::string>(),
                         e["label_probability"].get<double>(), e["suggested"].get<std::string>(), e["suggested_probability"].get<double>(),
                         e["text"].get<std::string>().substr(0, 60));
      }
    }
    s += "report written to " + path + "\n";
    fmt::print("{}", s);
    return 0;
  };
}

}  // namespace kotsu::cli
