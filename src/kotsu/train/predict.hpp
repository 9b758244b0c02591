// kotsu/train/predict: runs a classifier over encoded texts in eval mode, batching rows of similar length
// together (less padding), and returns class probabilities in the original row order.
#pragma once
#include <torch/types.h>

#include "kotsu/data/text_dataset.hpp"
#include "kotsu/models/text_classifier.hpp"

namespace kotsu {

torch::Tensor predict_logits(TextClassifier& model, const EncodedTexts& e, int64_t batch_size, const torch::Device& device);
// Encoder features [N, F] (what --strategy head caches).
torch::Tensor compute_features(TextClassifier& model, const EncodedTexts& e, int64_t batch_size, const torch::Device& device);

}  // namespace kotsu
