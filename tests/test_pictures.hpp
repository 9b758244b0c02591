// Test helper: a raw 224x224x3 uint8 picture (the coral test images) as model input [1, 3, 224, 224],
// normalised as the model's preprocessor says.
#pragma once
#include <torch/torch.h>

#include <string>

#include "kotsu/io/file.hpp"
#include "kotsu/io/image_config.hpp"

namespace kotsu::test {

inline torch::Tensor load_rgb224(const std::string& path, const ImagePreprocess& p) {
  std::string bytes = read_file(path);
  auto x = torch::from_blob(bytes.data(), {1, 224, 224, 3}, torch::kUInt8).permute({0, 3, 1, 2}).to(torch::kFloat32);
  auto mean = torch::tensor(p.mean, torch::kFloat64).to(torch::kFloat32).view({1, -1, 1, 1});
  auto std = torch::tensor(p.std, torch::kFloat64).to(torch::kFloat32).view({1, -1, 1, 1});
  return (x * static_cast<float>(p.rescale_factor) - mean) / std;
}

}  // namespace kotsu::test
