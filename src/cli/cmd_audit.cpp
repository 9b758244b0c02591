// kotsu audit --data FILE [--test FILE] [--model DIR | --oof oof.jsonl]: data problems before training
// (data/audit for texts, data/audit_images for pictures) and, with a model, rows ranked by how likely
// their label is wrong (out-of-fold probabilities from a `kotsu cv` run, made here with the head strategy
// when only --model is given). Writes OUT/audit.json and OUT/audit.html (eval/html_report).
#include <fmt/format.h>

#include <atomic>
#include <filesystem>
#include <thread>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "kotsu/core/error.hpp"
#include "kotsu/core/runtime.hpp"
#include "kotsu/data/audit.hpp"
#include "kotsu/data/audit_images.hpp"
#include "kotsu/data/image_dataset.hpp"
#include "kotsu/data/text_dataset.hpp"
#include "kotsu/eval/html_report.hpp"
#include "kotsu/infer/evaluate.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/models/image_model.hpp"
#include "kotsu/text/tokenizer.hpp"
#include "kotsu/train/cross_validate.hpp"

namespace kotsu::cli {

namespace fs = std::filesystem;

namespace {

struct AuditFlags {
  std::string data, test, model, oof, out = "audit";
  TextColumns cols;
  int64_t folds = 5, max_len = 0, top = 20, list = 50;
  double near = 0.8, similarity = 0.9;
  int threads = 0, distance = 6, min_side = 32;
  bool json = false, pictures = false;
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

bool picture_data(const AuditFlags& f) {
  return f.pictures || fs::is_directory(f.data) || fs::path(f.data).filename().string().find("images-idx") != std::string::npos ||
         (!f.model.empty() && is_image_model_dir(f.model));
}

// Every picture decoded once (in parallel) and fingerprinted; unreadable ones carry the reason.
void fingerprint_pictures(const ImageDataset& ds, int threads, std::vector<AuditPicture>& out) {
  std::vector<PictureFingerprint> prints(ds.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next++) < ds.size();) {
      try {
        prints[i] = fingerprint(ds.image(i));
      } catch (const Error& e) {
        prints[i].error = e.reason();
      }
    }
  };
  std::vector<std::thread> pool;
  const int n = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int t = 0; t < n; ++t) pool.emplace_back(work);
  for (auto& t : pool) t.join();
  for (size_t i = 0; i < ds.size(); ++i)
    out.push_back({ds.name(i), ds.classes[static_cast<size_t>(ds.targets[i])], ds.source, std::move(prints[i])});
}

// The out-of-fold ranking of likely mislabels into the report; describe(i) names row i.
void add_mislabels(nlohmann::json& rep, const std::string& oof, size_t rows, size_t top, const std::function<nlohmann::ordered_json(size_t)>& describe) {
  std::vector<std::string> labels;
  std::vector<double> probs;
  std::vector<int64_t> y;
  read_oof(oof, rows, labels, probs, y);
  MislabelRanking r = rank_mislabels(y, probs, static_cast<int64_t>(labels.size()));
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  const size_t k = labels.size();
  for (size_t rank = 0; rank < r.order.size() && rank < std::max(r.suspects, top); ++rank) {
    const size_t i = r.order[rank];
    const double* p = probs.data() + i * k;
    const size_t best = static_cast<size_t>(std::max_element(p, p + k) - p);
    nlohmann::ordered_json e = {{"rank", rank + 1}, {"row", i}};
    e.update(describe(i));
    e.update(nlohmann::ordered_json{{"label", labels[static_cast<size_t>(y[i])]}, {"label_probability", p[y[i]]}, {"suggested", labels[best]},
                                    {"suggested_probability", p[best]}, {"confident_joint", static_cast<bool>(r.suspect[i])}});
    list.push_back(e);
  }
  rep["likely_mislabels"] = {{"from", oof}, {"suspects", r.suspects}, {"ranking", list}};
  rep["mislabel_order"] = r.order;  // every row, most suspicious first
}

// Out-of-fold probabilities of a head-strategy cv of `model` on the data, in OUT/cv.
std::string head_cv(const AuditFlags& f) {
  TrainOptions to;
  to.model = f.model;
  to.data = f.data;
  to.columns = f.cols;
  to.strategy = "head";
  to.out = (fs::path(f.out) / "cv").string();
  to.threads = f.threads;
  CvOptions cv;
  cv.folds = f.folds;
  TrainHooks hooks;
  hooks.quiet = f.json;
  cross_validate(to, cv, hooks);
  return (fs::path(to.out) / "oof.jsonl").string();
}

std::string mislabel_lines(const nlohmann::json& rep, size_t top) {
  if (!rep.contains("likely_mislabels")) return "";
  const auto& lm = rep["likely_mislabels"];
  std::string s = fmt::format("  likely mislabelled (confident learning on {}): {} rows; the {} least likely labels:\n", lm["from"].get<std::string>(),
                              lm["suspects"].get<size_t>(), std::min(top, lm["ranking"].size()));
  for (size_t i = 0; i < lm["ranking"].size() && i < top; ++i) {
    const auto& e = lm["ranking"][i];
    const std::string where = e.contains("file") ? e["file"].get<std::string>() : "line " + std::to_string(e["line"].get<size_t>());
    s += fmt::format("    {}  {} ({:.2f}) -> {} ({:.2f})  {}\n", where, e["label"].get<std::string>(), e["label_probability"].get<double>(),
                     e["suggested"].get<std::string>(), e["suggested_probability"].get<double>(), e.value("text", std::string()).substr(0, 60));
  }
  return s;
}

}  // namespace

Action add_audit(CLI::App& app) {
  auto f = std::make_shared<AuditFlags>();
  auto* c = app.add_subcommand("audit", "find duplicates, conflicting labels, leakage, bad inputs, imbalance and likely mislabels in texts or pictures");
  c->add_option("--data", f->data, "labelled texts (.csv, .tsv, .jsonl) or pictures (a class-folder tree, an IDX file, or a CSV of path,label with --pictures)")->required();
  c->add_option("--test", f->test, "a test set to check for rows shared with --data (leakage)");
  c->add_option("--model", f->model, "rank likely mislabels with this model (a head-strategy cv, unless --oof is given); texts: also checks lengths against its tokenizer");
  c->add_option("--oof", f->oof, "out-of-fold predictions (oof.jsonl of kotsu cv on the same data) to rank likely mislabels");
  c->add_option("--folds", f->folds, "folds of the cv run for --model")->capture_default_str();
  c->add_option("--out", f->out, "directory for audit.json, audit.html (and the cv run for --model)")->capture_default_str();
  c->add_flag("--pictures", f->pictures, "the data is pictures (implied by a folder, an IDX file or a picture model)");
  c->add_option("--text-col", f->cols.text, "text column")->capture_default_str();
  c->add_option("--label-col", f->cols.label, "label column")->capture_default_str();
  c->add_option("--max-len", f->max_len, "texts with more tokens are reported as too long (default: the model's max_len)");
  c->add_option("--near", f->near, "texts: Jaccard similarity of character 5-grams for near duplicates")->capture_default_str();
  c->add_option("--distance", f->distance, "pictures: perceptual-hash bits (of 64) that near duplicates may differ in")->capture_default_str();
  c->add_option("--similarity", f->similarity, "pictures: correlation of 32 x 32 grey thumbnails that near duplicates must also reach")->capture_default_str();
  c->add_option("--min-side", f->min_side, "pictures: smaller ones are listed as tiny")->capture_default_str();
  c->add_option("--top", f->top, "likely mislabels to print")->capture_default_str();
  c->add_option("--list", f->list, "examples listed per finding in audit.json and audit.html")->capture_default_str();
  c->add_option("--threads", f->threads, "CPU threads (0 = all cores)");
  c->add_flag("--json", f->json, "print the JSON report");
  return [f]() {
    runtime_init(f->threads);
    const bool pictures = picture_data(*f);
    nlohmann::json rep;
    size_t n_rows = 0;
    std::function<nlohmann::ordered_json(size_t)> describe;
    std::vector<AuditPicture> pics;
    TextDataset d;
    AuditOptions o;
    o.near_threshold = f->near;
    o.max_listed = static_cast<size_t>(std::max<int64_t>(0, f->list));
    if (pictures) {
      if (f->max_len > 0) throw Error("options", "max_len", "applies to texts, not pictures");
      ImageDataset ds = load_image_dataset(f->data);
      fingerprint_pictures(ds, f->threads, pics);
      n_rows = ds.size();
      if (!f->test.empty()) fingerprint_pictures(load_image_dataset(f->test), f->threads, pics);
      PictureAuditOptions po;
      po.max_distance = f->distance;
      po.min_side = f->min_side;
      po.min_similarity = f->similarity;
      po.max_listed = static_cast<size_t>(std::max<int64_t>(0, f->list));
      rep = audit_pictures(pics, po);
      describe = [&](size_t i) { return nlohmann::ordered_json{{"file", pics[i].name}}; };
    } else {
      d = load_text_dataset(f->data, f->cols);
      std::vector<AuditRow> rows;
      for (size_t i = 0; i < d.size(); ++i) rows.push_back({d.texts[i], d.labels[i], f->data, d.lines[i]});
      if (!f->test.empty()) {
        TextDataset t = load_text_dataset(f->test, f->cols);
        for (size_t i = 0; i < t.size(); ++i) rows.push_back({t.texts[i], t.labels[i], f->test, t.lines[i]});
      }
      std::vector<int64_t> tokens;
      if (!f->model.empty()) {
        o.max_tokens = f->max_len > 0 ? f->max_len : run_max_len(f->model);
        Tokenizer tok = Tokenizer::load(f->model);
        for (const auto& r : rows) tokens.push_back(static_cast<int64_t>(tok.encode(r.text).ids.size()));
      } else if (f->max_len > 0) {
        throw Error("options", "max_len", "needs --model (its tokenizer counts the tokens)");
      }
      rep = audit_texts(rows, tokens, o);
      n_rows = d.size();
      describe = [&](size_t i) { return nlohmann::ordered_json{{"line", d.lines[i]}, {"text", d.texts[i].substr(0, 200)}}; };
    }
    std::string oof = f->oof;
    if (oof.empty() && !f->model.empty()) {
      if (pictures && rep["unreadable"]["count"].get<size_t>() > 0)
        throw Error(f->data, "", fmt::format("{} unreadable pictures (run without --model to list them): remove them before ranking mislabels with --model",
                                             rep["unreadable"]["count"].get<size_t>()));
      oof = head_cv(*f);
    }
    if (!oof.empty()) add_mislabels(rep, oof, n_rows, static_cast<size_t>(f->top), describe);
    make_dirs(f->out);
    const std::string path = (fs::path(f->out) / "audit.json").string(), html = (fs::path(f->out) / "audit.html").string();
    write_atomic(path, rep.dump(2) + "\n");
    write_atomic(html, audit_report_html(rep, f->data));
    if (f->json) {
      fmt::print("{}\n", rep.dump(2));
      return 0;
    }
    std::string s = fmt::format("audit of {}: {} {}, {} classes, imbalance ratio {:.1f} (largest / smallest class)\n", f->data, rep["rows"].get<size_t>(),
                                pictures ? "pictures" : "rows", rep["classes"].size(), rep["imbalance_ratio"].get<double>());
    s += fmt::format("  exact duplicates: {} extra rows; conflicting labels: {} groups of identical {}\n", rep["exact_duplicates"]["extra_rows"].get<size_t>(),
                     rep["conflicting_labels"]["groups"].get<size_t>(), pictures ? "pictures" : "texts");
    if (pictures) {
      s += fmt::format("  near duplicates (perceptual hash within {} bits, similarity >= {}): {} pairs, {} with different labels\n", f->distance,
                       f->similarity, rep["near_duplicates"]["pairs"].get<size_t>(), rep["near_duplicates"]["with_different_labels"].get<size_t>());
      if (rep["near_duplicates"].contains("note")) s += "    note: " + rep["near_duplicates"]["note"].get<std::string>() + "\n";
      s += fmt::format("  unreadable: {}; blank: {}; smaller than {} px: {}\n", rep["unreadable"]["count"].get<size_t>(), rep["blank"]["count"].get<size_t>(),
                       f->min_side, rep["tiny"]["count"].get<size_t>());
      for (const auto& e : rep["unreadable"]["examples"]) s += fmt::format("    unreadable {}: {}\n", e["file"].get<std::string>(), e["reason"].get<std::string>());
    } else {
      s += fmt::format("  near duplicates (Jaccard >= {}): {} pairs, {} with different labels\n", f->near, rep["near_duplicates"]["pairs"].get<size_t>(),
                       rep["near_duplicates"]["with_different_labels"].get<size_t>());
      s += fmt::format("  empty texts: {}; shorter than {} characters: {}", rep["empty"]["count"].get<size_t>(), o.min_chars,
                       rep["too_short"]["count"].get<size_t>());
      if (rep.contains("too_long")) s += fmt::format("; longer than {} tokens (truncated): {}", o.max_tokens, rep["too_long"]["count"].get<size_t>());
      s += "\n";
    }
    if (rep.contains("leakage"))
      s += fmt::format("  leakage into {}: {} identical, {} near-identical\n", f->test, rep["leakage"]["exact"].get<size_t>(), rep["leakage"]["near"].get<size_t>());
    s += mislabel_lines(rep, static_cast<size_t>(f->top));
    s += "report written to " + path + " and " + html + "\n";
    fmt::print("{}", s);
    return 0;
  };
}

}  // namespace kotsu::cli
