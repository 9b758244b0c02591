// kotsu/models/param_group: a model's parameters grouped bottom to top ("embeddings" or "stem",
// "layer.0" .. "layer.N-1", "pooler", "head"), so freezing and discriminative learning rates work the
// same on every architecture.
#pragma once
#include <torch/types.h>

#include <string>
#include <utility>
#include <vector>

namespace kotsu {

struct ParamGroup {
  std::string name;
  std::vector<std::pair<std::string, torch::Tensor>> params;
};

// What loading a checkpoint into a model did.
struct LoadReport {
  bool head_initialised = false;  // the checkpoint had no (or a differently-sized) head
  size_t loaded = 0;
  std::vector<std::string> unexpected;  // checkpoint tensors the model does not use
};

}  // namespace kotsu
