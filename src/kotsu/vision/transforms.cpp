#include "kotsu/vision/transforms.hpp"

#include <torch/torch.h>

#include <cmath>

namespace kotsu {

namespace F = torch::nn::functional;

torch::Tensor image_to_tensor(const Image& img) {
  auto t = torch::from_blob(const_cast<uint8_t*>(img.pixels.data()), {img.height, img.width, 3}, torch::kUInt8);
  return t.permute({2, 0, 1}).to(torch::kFloat32).contiguous();
}

torch::Tensor resize_to(const torch::Tensor& x, int64_t h, int64_t w) {
  if (x.size(1) == h && x.size(2) == w) return x;
  const bool shrink = h < x.size(1) || w < x.size(2);
  auto y = F::interpolate(x.unsqueeze(0), F::InterpolateFuncOptions()
                                              .size(std::vector<int64_t>{h, w})
                                              .mode(torch::kBilinear)
                                              .align_corners(false)
                                              .antialias(shrink));
  return y.squeeze(0);
}

torch::Tensor resize_shorter(const torch::Tensor& x, int64_t size) {
  const int64_t h = x.size(1), w = x.size(2);
  if (std::min(h, w) == size) return x;
  // torchvision: the shorter side becomes `size`, the other keeps the ratio (truncated)
  if (h <= w) return resize_to(x, size, static_cast<int64_t>(static_cast<double>(size) * w / h));
  return resize_to(x, static_cast<int64_t>(static_cast<double>(size) * h / w), size);
}

torch::Tensor center_crop(const torch::Tensor& x, int64_t h, int64_t w) {
  int64_t H = x.size(1), W = x.size(2);
  torch::Tensor y = x;
  if (H < h || W < w) {  // pad with zeros like torchvision
    const int64_t ph = std::max<int64_t>(h - H, 0), pw = std::max<int64_t>(w - W, 0);
    y = F::pad(y, F::PadFuncOptions({pw / 2, pw - pw / 2, ph / 2, ph - ph / 2}));
    H = y.size(1);
    W = y.size(2);
  }
  const int64_t top = static_cast<int64_t>(std::round((H - h) / 2.0)), left = static_cast<int64_t>(std::round((W - w) / 2.0));
  return y.slice(1, top, top + h).slice(2, left, left + w);
}

torch::Tensor normalize(const torch::Tensor& x255, const ImagePreprocess& p) {
  auto mean = torch::tensor(p.mean, torch::kFloat64).to(torch::kFloat32).view({-1, 1, 1});
  auto std = torch::tensor(p.std, torch::kFloat64).to(torch::kFloat32).view({-1, 1, 1});
  return ((x255 * static_cast<float>(p.rescale_factor) - mean) / std).contiguous();
}

torch::Tensor eval_transform(const Image& img, const ImagePreprocess& p) {
  torch::Tensor x = resize_shorter(image_to_tensor(img), p.resize_shortest);
  return normalize(center_crop(x, p.crop_height, p.crop_width), p);
}

namespace {

double uniform(std::mt19937_64& rng, double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng); }

// torchvision's RandomResizedCrop.get_params: 10 tries at a random area and aspect ratio, else a center crop
// at the clamped ratio.
std::array<int64_t, 4> crop_box(int64_t H, int64_t W, const Augment& a, std::mt19937_64& rng) {
  const double area = static_cast<double>(H * W);
  for (int t = 0; t < 10; ++t) {
    const double target = area * uniform(rng, a.crop_scale_min, a.crop_scale_max);
    const double ratio = std::exp(uniform(rng, std::log(a.crop_ratio_min), std::log(a.crop_ratio_max)));
    const auto w = static_cast<int64_t>(std::lround(std::sqrt(target * ratio)));
    const auto h = static_cast<int64_t>(std::lround(std::sqrt(target / ratio)));
    if (w > 0 && h > 0 && w <= W && h <= H) {
      const auto top = std::uniform_int_distribution<int64_t>(0, H - h)(rng);
      const auto left = std::uniform_int_distribution<int64_t>(0, W - w)(rng);
      return {top, left, h, w};
    }
  }
  const double in_ratio = static_cast<double>(W) / H;
  int64_t w = W, h = H;
  if (in_ratio < a.crop_ratio_min) h = static_cast<int64_t>(std::lround(w / a.crop_ratio_min));
  else if (in_ratio > a.crop_ratio_max) w = static_cast<int64_t>(std::lround(h * a.crop_ratio_max));
  return {(H - h) / 2, (W - w) / 2, h, w};
}

torch::Tensor gray(const torch::Tensor& x) {  // ITU-R 601-2 luma, as torchvision
  return (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]).unsqueeze(0);
}

torch::Tensor rotate(const torch::Tensor& x, double degrees) {
  const double r = degrees * M_PI / 180.0, c = std::cos(r), s = std::sin(r);
  const double H = static_cast<double>(x.size(1)), W = static_cast<double>(x.size(2));
  // rotation about the centre in pixel units, expressed in normalised coordinates
  auto theta = torch::tensor({c, -s * H / W, 0.0, s * W / H, c, 0.0}, torch::kFloat32).view({1, 2, 3});
  auto grid = F::affine_grid(theta, {1, x.size(0), x.size(1), x.size(2)}, false);
  return F::grid_sample(x.unsqueeze(0), grid, F::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kZeros).align_corners(false))
      .squeeze(0);
}

// Hue rotation by `shift` turns (-0.5..0.5) in YIQ space, a linear map of RGB.
torch::Tensor hue_shift(const torch::Tensor& x, double shift) {
  const double a = shift * 2 * M_PI, c = std::cos(a), s = std::sin(a);
  auto to_yiq = torch::tensor({0.299, 0.587, 0.114, 0.596, -0.274, -0.322, 0.211, -0.523, 0.312}, torch::kFloat64).view({3, 3});
  auto rot = torch::tensor({1.0, 0.0, 0.0, 0.0, c, -s, 0.0, s, c}, torch::kFloat64).view({3, 3});
  auto m = torch::linalg_inv(to_yiq).matmul(rot).matmul(to_yiq).to(torch::kFloat32);
  return m.matmul(x.reshape({3, -1})).reshape(x.sizes());
}

}  // namespace

torch::Tensor train_transform(const Image& img, const ImagePreprocess& p, const Augment& a, std::mt19937_64& rng) {
  if (!a.enabled) return eval_transform(img, p);
  torch::Tensor x = image_to_tensor(img);
  const auto [top, left, h, w] = crop_box(x.size(1), x.size(2), a, rng);
  x = resize_to(x.slice(1, top, top + h).slice(2, left, left + w), p.crop_height, p.crop_width);
  if (a.hflip && uniform(rng, 0, 1) < 0.5) x = x.flip({2});
  if (a.vflip && uniform(rng, 0, 1) < 0.5) x = x.flip({1});
  if (a.rotation > 0) x = rotate(x, uniform(rng, -a.rotation, a.rotation));
  // colour jitter in torchvision's order (brightness, contrast, saturation, hue), on [0, 255]
  if (a.brightness > 0) x = (x * uniform(rng, std::max(0.0, 1 - a.brightness), 1 + a.brightness)).clamp(0, 255);
  if (a.contrast > 0) {
    const double f = uniform(rng, std::max(0.0, 1 - a.contrast), 1 + a.contrast);
    x = (f * x + (1 - f) * gray(x).mean()).clamp(0, 255);
  }
  if (a.saturation > 0) {
    const double f = uniform(rng, std::max(0.0, 1 - a.saturation), 1 + a.saturation);
    x = (f * x + (1 - f) * gray(x)).clamp(0, 255);
  }
  if (a.hue > 0) x = hue_shift(x, uniform(rng, -a.hue, a.hue)).clamp(0, 255);
  return normalize(x, p);
}

}  // namespace kotsu
