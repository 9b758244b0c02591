#include "kotsu/infer/evaluate.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>

#include "kotsu/core/error.hpp"
#include "kotsu/data/mask_file.hpp"
#include "kotsu/eval/scores.hpp"
#include "kotsu/infer/predict.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/io/json_file.hpp"
#include "kotsu/models/quantize.hpp"

namespace kotsu {

namespace fs = std::filesystem;

namespace {
// The "options" object of RUN/run.json; an empty object when the directory has no run.json.
nlohmann::json run_options(const std::string& run_dir) {
  const std::string p = (fs::path(run_dir) / "run.json").string();
  if (!file_exists(p)) return nlohmann::json::object();
  nlohmann::json j = read_json(p);
  if (!j.is_object() || !j.contains("options") || !j["options"].is_object()) throw Error(p, "options", "missing or not an object");
  return j["options"];
}
}  // namespace

int64_t run_max_len(const std::string& run_dir) {
  try {
    return run_options(run_dir).value("max_len", int64_t(128));
  } catch (const std::exception&) {
    return 128;
  }
}

DecisionRule run_decision_rule(const std::string& run_dir, const std::vector<std::string>& labels) {
  const std::string p = (fs::path(run_dir) / "run.json").string();
  if (!file_exists(p)) return {};
  const nlohmann::json j = read_json(p);
  if (!j.is_object() || !j.contains("decision") || !j["decision"].is_object()) return {};
  const nlohmann::json& d = j["decision"];
  if (!d.contains("class") || !d["class"].is_string() || !d.contains("threshold") || !d["threshold"].is_number())
    throw Error(p, "decision", "needs a class name and a numeric threshold");
  const auto at = std::find(labels.begin(), labels.end(), d["class"].get<std::string>());
  if (at == labels.end()) throw Error(p, "decision.class", "'" + d["class"].get<std::string>() + "' is not one of the model's labels");
  return {at - labels.begin(), d["threshold"].get<double>()};
}

bool run_masks_pii(const std::string& run_dir) {
  const nlohmann::json o = run_options(run_dir);
  return o.contains("mask_pii") && o["mask_pii"].is_boolean() && o["mask_pii"].get<bool>();
}

TextColumns run_columns(const std::string& run_dir) {
  TextColumns c;
  const nlohmann::json o = run_options(run_dir);
  try {
    c.text = o.value("text_col", c.text);
    c.label = o.value("label_col", c.label);
    c.text_pair = o.value("text_pair_col", c.text_pair);
  } catch (const std::exception& e) {
    throw Error((fs::path(run_dir) / "run.json").string(), "options", std::string("unreadable: ") + e.what());
  }
  return c;
}

EvalResult evaluate_run(const std::string& run_dir, const std::string& data, const TextColumns& cols, int64_t batch_size,
                        const std::string& device, TextDataset* loaded, const std::vector<int64_t>& rows) {
  TextModel m = load_text_model(run_dir);
  TextDataset d = load_text_dataset(data, cols);
  if (!rows.empty()) d = subset(d, rows);
  if (run_masks_pii(run_dir)) mask_texts(d, PiiMasker());  // as in training: the originals are not kept
  auto y = label_ids(d, m.config.labels);
  const size_t max_len = static_cast<size_t>(std::min<int64_t>(run_max_len(run_dir), m.model->max_positions()));
  EncodedTexts enc = encode_texts(*m.tokenizer, d, max_len, y);
  torch::Device dev(device);
  m.model->to(dev);
  const bool int8 = int8_for_inference(*m.model, run_dir, dev);  // an export --int8 directory is evaluated as served
  EvalResult r = make_eval_result(m.config.labels, y,
                                  score_logits(predict_logits(*m.model, enc, batch_size, dev), y, run_decision_rule(run_dir, m.config.labels)),
                                  run_dir, data);
  if (int8) r.report["int8"] = true;
  r.lines = d.lines;
  if (loaded) *loaded = d;
  return r;
}

EvalResult make_eval_result(const std::vector<std::string>& labels, const std::vector<int64_t>& truth, ScoredLogits scored,
                            const std::string& run_dir, const std::string& data) {
  EvalResult r;
  r.labels = labels;
  r.metrics = std::move(scored.metrics);
  r.truth = truth;
  r.predicted = std::move(scored.predicted);
  r.confidence = std::move(scored.confidence);
  r.probs = std::move(scored.probs);
  r.report = metrics_json(r.metrics, r.labels);
  if (!r.truth.empty()) r.report["scores"] = score_report(r.truth, r.probs, static_cast<int64_t>(labels.size()), labels);
  r.report["run"] = run_dir;
  r.report["data"] = data;
  return r;
}

void write_predictions(const EvalResult& r, const TextDataset& d, const std::string& path) {
  std::string out;
  for (size_t i = 0; i < r.predicted.size(); ++i) {
    nlohmann::ordered_json j;
    j["line"] = r.lines[i];
    j["text"] = d.texts[i];
    add_prediction_fields(r, i, j);
    out += j.dump() + "\n";
  }
  write_atomic(path, out);
}

void add_prediction_fields(const EvalResult& r, size_t i, nlohmann::ordered_json& j) {
  j["label"] = r.labels[static_cast<size_t>(r.truth[i])];
  j["predicted"] = r.labels[static_cast<size_t>(r.predicted[i])];
  j["confidence"] = r.confidence[i];
  j["correct"] = r.truth[i] == r.predicted[i];
}

std::vector<Prediction> predict_texts(TextModel& m, const std::vector<std::string>& texts, int64_t max_len,
                                      int64_t batch_size, const std::string& device, const DecisionRule& rule) {
  TextDataset d;
  d.path = "<input>";
  d.texts = texts;
  d.lines.resize(texts.size());
  EncodedTexts enc = encode_texts(*m.tokenizer, d, static_cast<size_t>(std::min<int64_t>(max_len, m.model->max_positions())));
  torch::Device dev(device);
  m.model->to(dev);
  std::vector<Prediction> out;
  if (texts.empty()) return out;
  auto probs = torch::softmax(predict_logits(*m.model, enc, batch_size, dev), 1).contiguous();
  const int64_t k = probs.size(1);
  const float* p = probs.data_ptr<float>();
  for (size_t i = 0; i < texts.size(); ++i) {
    Prediction pr;
    pr.probs.assign(p + i * static_cast<size_t>(k), p + (i + 1) * static_cast<size_t>(k));
    pr.label = m.config.labels[static_cast<size_t>(decide(pr.probs.data(), k, rule))];
    out.push_back(std::move(pr));
  }
  return out;
}

}  // namespace kotsu
