// kotsu/infer/predict: runs a classifier over encoded texts in eval mode, batching rows of similar length
// together (less padding), and returns class probabilities in the original row order.
#pragma once
#include <torch/types.h>

#include "kotsu/data/text_dataset.hpp"
#include "kotsu/eval/decision.hpp"
#include "kotsu/eval/metrics.hpp"
#include "kotsu/models/text_classifier.hpp"

namespace kotsu {

torch::Tensor predict_logits(TextClassifier& model, const EncodedTexts& e, int64_t batch_size, const torch::Device& device);
// Metrics of logits [N, C] against labels y, with each row's predicted class and its probability.
struct ScoredLogits {
  ClassificationMetrics metrics;  // includes log loss
  std::vector<int64_t> predicted;
  std::vector<float> confidence;
  std::vector<double> probs;  // softmax, row-major [N, C]
};
// The predicted class follows `rule` (eval/decision: the most probable class unless a run set a threshold).
ScoredLogits score_logits(const torch::Tensor& logits, const std::vector<int64_t>& y, const DecisionRule& rule = {});

// Encoder features [N, F] (what --strategy head caches).
torch::Tensor compute_features(TextClassifier& model, const EncodedTexts& e, int64_t batch_size, const torch::Device& device);

}  // namespace kotsu
