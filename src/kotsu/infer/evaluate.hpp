// kotsu/infer/evaluate: evaluates a trained run (a model directory with labels) on a labelled file, and
// predicts labels for raw texts. Unknown labels in the file are errors naming the line.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kotsu/data/text_dataset.hpp"
#include "kotsu/eval/decision.hpp"
#include "kotsu/eval/metrics.hpp"
#include "kotsu/infer/predict.hpp"
#include "kotsu/models/text_model.hpp"

namespace kotsu {

struct EvalResult {
  ClassificationMetrics metrics;
  std::vector<std::string> labels;
  std::vector<int64_t> truth, predicted;  // per row of the data file
  std::vector<float> confidence;          // probability of the predicted label
  std::vector<double> probs;              // every label's probability, row-major [rows, labels]
  std::vector<size_t> lines;              // where each row starts in the file
  nlohmann::json report;  // metrics_json + model, data, predictions summary
};

EvalResult evaluate_run(const std::string& run_dir, const std::string& data, const TextColumns& cols, int64_t batch_size = 64,
                        const std::string& device = "cpu", TextDataset* loaded = nullptr,
                        const std::vector<int64_t>& rows = {});

// One JSON object per row: line, text, label, predicted, confidence, correct (for error analysis).
void write_predictions(const EvalResult& r, const TextDataset& d, const std::string& path);
// An EvalResult from scored logits: metrics, predictions and the JSON report naming run and data.
EvalResult make_eval_result(const std::vector<std::string>& labels, const std::vector<int64_t>& truth, ScoredLogits scored,
                            const std::string& run_dir, const std::string& data);
// Row i's label, predicted label, confidence and correctness appended to `j` (what each prediction line ends with).
void add_prediction_fields(const EvalResult& r, size_t i, nlohmann::ordered_json& j);

struct Prediction {
  std::string label;
  std::vector<float> probs;  // per label, in the model's label order
};

std::vector<Prediction> predict_texts(TextModel& m, const std::vector<std::string>& texts, int64_t max_len = 128,
                                      int64_t batch_size = 64, const std::string& device = "cpu", const DecisionRule& rule = {});
// The decision rule a run stores (run.json "decision", from --target-recall) over `labels`; the most probable
// class when the run has none. A decision naming a class not in `labels`: kotsu::Error.
DecisionRule run_decision_rule(const std::string& run_dir, const std::vector<std::string>& labels);
// max_len the run was trained with (run.json), 128 when it has none.
int64_t run_max_len(const std::string& run_dir);
// Whether the run was trained with --mask-pii (its eval and predict then mask their texts too).
bool run_masks_pii(const std::string& run_dir);
// The run's columns and max_len from its run.json, when it has one.
TextColumns run_columns(const std::string& run_dir);

}  // namespace kotsu
