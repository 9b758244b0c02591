// kotsu/train/head_fit: fits a classifier's head alone on cached encoder features, as a regularised
// logistic regression is fitted (scikit-learn's LogisticRegressionCV is the model): for each L2 strength of a
// grid, full-batch L-BFGS with a strong-Wolfe line search to convergence on 3 stratified folds of the
// training features, each from the same seeded initialisation; the strength with the lowest cross-validated
// log loss is refitted on all of them. The validation split is not used (with a few hundred examples it
// holds a few dozen rows, too few to rank ten strengths); the caller scores the result on it. Used by --strategy head and, before
// full/partial fine-tuning, to give a new head a fitted start. Deterministic for a given seed.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "kotsu/models/classifier.hpp"

namespace kotsu {

struct HeadFit {
  double l2 = 0;            // the chosen strength: mean loss + l2/2 * squared weights (biases not penalised)
  double cv_loss = 0;       // its cross-validated log loss on the training features
  int64_t candidates = 0;   // strengths tried (0: too few rows to cross-validate, l2 = 1)
  int64_t folds = 0;        // folds of that cross-validation (0: none)
  torch::Tensor oof_logits; // [N, classes]: each row's logits from the chosen strength's fit without its fold (undefined without folds)
};

// x [N, F] are model.features() outputs, y their label ids. Leaves the model in eval mode.
// class_weights (optional, [classes]) weight the loss per true class, for imbalanced data.
HeadFit fit_head(Classifier& model, const torch::Tensor& x, const torch::Tensor& y, uint64_t seed,
                 double label_smoothing = 0.0, const torch::Tensor& class_weights = {});

}  // namespace kotsu
