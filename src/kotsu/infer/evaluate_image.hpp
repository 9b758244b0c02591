// kotsu/infer/evaluate_image: evaluates a trained image run (or any labelled image model directory) on
// labelled pictures, and predicts the top classes of picture files, with the model's own preprocessing.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "kotsu/infer/evaluate.hpp"
#include "kotsu/models/image_model.hpp"
#include "kotsu/vision/image.hpp"

namespace kotsu {

// data: a class-folder tree, a CSV of path,label or an IDX file; the classes must be the model's labels.
// names receives the picture of each row (for write_image_predictions); skipped the pictures skip_bad left
// out, and why.
EvalResult evaluate_image_run(const std::string& run_dir, const std::string& data, int64_t batch_size = 64,
                              const std::string& device = "cpu", bool skip_bad = false, std::vector<std::string>* names = nullptr,
                              std::vector<std::pair<std::string, std::string>>* skipped = nullptr,
                              const std::vector<int64_t>& rows = {});
void write_image_predictions(const EvalResult& r, const std::vector<std::string>& names, const std::string& path);

// Class probabilities [N, labels] of the pictures (eval transform: resize, center crop, normalise).
torch::Tensor predict_images(ImageModel& m, const std::vector<Image>& images, int64_t batch_size = 64,
                             const std::string& device = "cpu");

// Pooled features [N, F] (what the head sees) of the pictures, eval transform.
torch::Tensor image_features(ImageModel& m, const std::vector<Image>& images, int64_t batch_size = 64,
                             const std::string& device = "cpu");

}  // namespace kotsu
