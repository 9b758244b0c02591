// kotsu/infer/embed: the features a model's head sees (what --strategy head caches) for every example of a
// data file, in the file's order: the pooled CNN features of pictures (eval transform) or the pooled encoder
// output of texts. For search, clustering, drift checks or a classifier of one's own (`kotsu embed`).
#pragma once
#include <torch/types.h>

#include <string>
#include <vector>

#include "kotsu/data/text_dataset.hpp"

namespace kotsu {

struct Embedded {
  torch::Tensor features;            // [N, F] float32 on the CPU
  std::vector<std::string> names;    // each row's picture or "line N"
  std::vector<std::string> labels;   // each row's label ("" when the data has none)
  std::vector<std::pair<std::string, std::string>> skipped;  // pictures left out by skip_bad, and why
};

// model_dir: a run or any model directory (a model without labels is fine: the head is not used).
// Texts take the text column only (labels are read when the column exists); pictures any image dataset.
// image_size > 0 evaluates pictures at that square size instead of the model's.
Embedded embed_data(const std::string& model_dir, const std::string& data, const TextColumns& cols, int64_t batch_size,
                    const std::string& device, bool skip_bad = false, int64_t image_size = 0);

}  // namespace kotsu
