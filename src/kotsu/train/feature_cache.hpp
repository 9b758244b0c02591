// kotsu/train/feature_cache: the frozen features of a run's training or validation examples, kept in
// memory for the life of the process, so that the trials of a hyper-parameter search (head fits, and the
// head fitted first before full or partial fine-tuning) encode a dataset once instead of once per trial.
// The key holds every option that changes the features (model and its files, init, data files and their
// sizes and times, split, rows, columns, lengths, masking, picture size, device); the last 4 entries are
// kept.
#pragma once
#include <torch/torch.h>

#include <functional>

#include "kotsu/train/options.hpp"

namespace kotsu {

// compute() when the key is new; *hit says whether it came from the cache.
torch::Tensor cached_features(const TrainOptions& o, bool train, const std::function<torch::Tensor()>& compute, bool* hit = nullptr);

}  // namespace kotsu
