// kotsu/train/cross_validate: K-fold cross-validation where every fold is a full fine-tune (`kotsu cv`).
// Folds are stratified by label (each fold holds every class in about its overall share) or, with a group
// column, grouped (no group in two folds: rows of one customer, patient or product never sit on both
// sides). The plan (fold of every row) is written first; each fold trains in OUT/fold-k from its rows
// outside fold k (holding out its own validation split for early stopping), then predicts fold k. A
// killed cv resumes: finished folds are kept, a fold killed mid-training resumes from its checkpoint.
// Writes OUT/cv.json (per-fold metrics, mean and sample standard deviation) and OUT/oof.jsonl (every
// row's out-of-fold prediction and probabilities: what `kotsu audit` ranks likely mislabels by).
#pragma once
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kotsu/train/options.hpp"
#include "kotsu/train/trainer.hpp"

namespace kotsu {

// Fold (0..k-1) of every row: per class, rows shuffled with the seed and dealt round-robin, each class
// continuing where the last one stopped (fold sizes differ by at most one).
std::vector<int64_t> stratified_folds(const std::vector<int64_t>& y, int64_t k, uint64_t seed);
// Fold of every row with whole groups per fold: groups from largest to smallest, each to the fold with the
// fewest rows so far (scikit-learn's GroupKFold). Needs at least k groups.
std::vector<int64_t> group_folds(const std::vector<std::string>& groups, int64_t k);

struct CvOptions {
  int64_t folds = 5;
  std::string group_col;  // empty: stratified folds
  // After each finished fold with its metrics (accuracy, macro_f1, weighted_f1, log_loss, ...); returning
  // true stops the cv there (the summary's status is then "stopped"; a later run continues). Search pruning.
  std::function<bool(int64_t fold, const nlohmann::json& metrics)> on_fold;
};

// o.out is the cv directory; o.rows and o.val_data must be empty (each fold makes its own).
nlohmann::json cross_validate(const TrainOptions& o, const CvOptions& cv, const TrainHooks& hooks = {});

}  // namespace kotsu
