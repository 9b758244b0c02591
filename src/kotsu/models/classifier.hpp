// kotsu/models/classifier: what every classifier offers whatever its input (text or pictures): a head on
// features, its parameters grouped bottom to top, and (re)initialisation. TextClassifier and
// ImageClassifier add how features are computed from their inputs. Head fitting, freezing and the
// optimizer's parameter groups work on this interface alone.
#pragma once
#include <torch/nn/module.h>
#include <torch/types.h>

#include <string>
#include <utility>
#include <vector>

#include "kotsu/models/param_group.hpp"

namespace kotsu {

class Classifier : public torch::nn::Module {
 public:
  virtual torch::Tensor head(const torch::Tensor& features) = 0;  // [B, num_labels]
  virtual std::vector<ParamGroup> param_groups() = 0;             // bottom to top, "head" last
  virtual int64_t num_layers() const = 0;
  virtual int64_t num_labels() const = 0;
  // Re-draws the head's weights as Hugging Face initialises a new head.
  virtual void init_head(uint64_t seed) = 0;
  // Re-draws every weight (for --init random, training from scratch).
  virtual void init_all(uint64_t seed) = 0;
  // All tensors to save (parameters and buffers), with their Hugging Face names.
  std::vector<std::pair<std::string, torch::Tensor>> state() {
    std::vector<std::pair<std::string, torch::Tensor>> out;
    for (const auto& p : named_parameters(true)) out.emplace_back(p.key(), p.value());
    for (const auto& b : named_buffers(true)) out.emplace_back(b.key(), b.value());
    return out;
  }
};

}  // namespace kotsu
