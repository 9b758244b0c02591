// kotsu/vision/transforms: pictures -> normalised model input [3, H, W] float, as torchvision's
// transforms do: resize of the shorter side (bilinear, antialiased when shrinking), center crop,
// random resized crop, horizontal/vertical flip, rotation, colour jitter (brightness, contrast,
// saturation, hue), then (x * rescale - mean) / std with the model's preprocessor_config.json values.
// ensures: every random choice comes from the generator passed in, so a (seed, epoch, index) triple
//          gives the same picture every time.
#pragma once
#include <torch/types.h>

#include <random>

#include "kotsu/io/image_config.hpp"
#include "kotsu/vision/image.hpp"

namespace kotsu {

struct Augment {
  double crop_scale_min = 0.25, crop_scale_max = 1.0;  // random resized crop: fraction of the area kept
  double crop_ratio_min = 3.0 / 4.0, crop_ratio_max = 4.0 / 3.0;
  bool hflip = true, vflip = false;
  double rotation = 0;  // degrees: uniform in [-rotation, rotation]
  double brightness = 0.2, contrast = 0.2, saturation = 0.2, hue = 0.0;  // jitter strengths (torchvision's meaning)
  bool enabled = true;  // false: the eval transform
};

torch::Tensor image_to_tensor(const Image& img);  // [3, H, W] float in [0, 255]
torch::Tensor resize_shorter(const torch::Tensor& x, int64_t size);
torch::Tensor resize_to(const torch::Tensor& x, int64_t h, int64_t w);
torch::Tensor center_crop(const torch::Tensor& x, int64_t h, int64_t w);
// The evaluation transform: resize the shorter side, center crop, normalise.
torch::Tensor eval_transform(const Image& img, const ImagePreprocess& p);
// The training transform: random resized crop to the crop size, flips, rotation, colour jitter, normalise.
torch::Tensor train_transform(const Image& img, const ImagePreprocess& p, const Augment& a, std::mt19937_64& rng);
torch::Tensor normalize(const torch::Tensor& x255, const ImagePreprocess& p);

}  // namespace kotsu
