#include "kotsu/models/efficientnet.hpp"

#include <torch/torch.h>

#include <cmath>

#include "kotsu/models/mobilenet.hpp"
#include "kotsu/models/ops.hpp"

namespace kotsu {

namespace {

using Hook = std::shared_ptr<ImageClassifier::ActivationHook>;

struct Stage {
  int64_t kernel, stride, expand, out, repeats;
};
const Stage kLite0[] = {{3, 1, 1, 16, 1}, {3, 2, 6, 24, 2}, {5, 2, 6, 40, 2}, {3, 2, 6, 80, 3},
                        {5, 1, 6, 112, 3}, {5, 2, 6, 192, 4}, {3, 1, 6, 320, 1}};

}  // namespace

// A convolution (no bias) named `conv` and its batch norm named `bn`, both registered on `owner` (timm's
// names have no module of their own around them), then ReLU6.
struct EfficientNetConvImpl {
  std::string name;  // the convolution's full name, for the activation hook
  int64_t kernel, stride;
  bool tf_padding, act;
  Hook hook;
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
  EfficientNetConvImpl(torch::nn::Module& owner, const std::string& prefix, const std::string& conv_name, const std::string& bn_name,
                       int64_t in, int64_t out, int64_t k, int64_t s, int64_t groups, bool activation, const ImageConfig& c, Hook h)
      : name(prefix + conv_name), kernel(k), stride(s), tf_padding(c.tf_padding), act(activation), hook(std::move(h)) {
    conv = owner.register_module(conv_name, torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).stride(s).groups(groups).bias(false)
                                                                   .padding(tf_padding ? 0 : (k - 1) / 2)));
    bn = owner.register_module(bn_name, torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(out).eps(c.layer_norm_eps).momentum(0.1)));
  }
  torch::Tensor forward(torch::Tensor x) {
    if (tf_padding) x = pad_same(x, kernel, stride);
    x = bn(conv(x));
    if (act) x = torch::clamp(x, 0.0, 6.0);
    return *hook ? (*hook)(name, x) : x;
  }
};

struct EfficientNetBlockImpl : torch::nn::Module {
  std::shared_ptr<EfficientNetConvImpl> expand, dw, project;  // expand is null in a depthwise-separable block
  bool residual;
  std::string name;
  Hook hook;
  EfficientNetBlockImpl(const std::string& name_, int64_t in, int64_t out, const Stage& st, int64_t stride, const ImageConfig& c, Hook h)
      : residual(stride == 1 && in == out), name(name_), hook(h) {
    const std::string p = name + ".";
    if (st.expand == 1) {  // timm's DepthwiseSeparableConv: conv_dw, bn1, conv_pw, bn2
      dw = std::make_shared<EfficientNetConvImpl>(*this, p, "conv_dw", "bn1", in, in, st.kernel, stride, in, true, c, h);
      project = std::make_shared<EfficientNetConvImpl>(*this, p, "conv_pw", "bn2", in, out, 1, 1, 1, false, c, h);
    } else {  // InvertedResidual: conv_pw, bn1, conv_dw, bn2, conv_pwl, bn3
      const int64_t mid = in * st.expand;
      expand = std::make_shared<EfficientNetConvImpl>(*this, p, "conv_pw", "bn1", in, mid, 1, 1, 1, true, c, h);
      dw = std::make_shared<EfficientNetConvImpl>(*this, p, "conv_dw", "bn2", mid, mid, st.kernel, stride, mid, true, c, h);
      project = std::make_shared<EfficientNetConvImpl>(*this, p, "conv_pwl", "bn3", mid, out, 1, 1, 1, false, c, h);
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor y = project->forward(dw->forward(expand ? expand->forward(x) : x));
    if (!residual) return y;
    y = x + y;
    return *hook ? (*hook)(name + ".add", y) : y;
  }
};

EfficientNetLiteClassifier::EfficientNetLiteClassifier(const ImageConfig& c, int64_t num_labels)
    : ImageClassifier(c), num_labels_(num_labels) {
  const Hook& h = hook_;
  auto channels = [&](int64_t ch) { return make_divisible(static_cast<double>(ch) * c.width_coefficient, 8, 8); };
  const int64_t stem_out = 32;  // Lite: the stem is not scaled
  stem_ = std::make_shared<EfficientNetConvImpl>(*this, "", "conv_stem", "bn1", c.num_channels, stem_out, 3, 2, 1, true, c, h);
  auto blocks = register_module("blocks", std::make_shared<torch::nn::Module>());
  int64_t in = stem_out;
  const size_t n_stages = std::size(kLite0);
  for (size_t s = 0; s < n_stages; ++s) {
    const Stage& st = kLite0[s];
    const bool fixed = s == 0 || s + 1 == n_stages;  // Lite keeps the first and last stage's repeats
    const int64_t repeats = fixed ? st.repeats : static_cast<int64_t>(std::ceil(static_cast<double>(st.repeats) * c.depth_coefficient));
    const int64_t out = channels(st.out);
    auto stage = blocks->register_module(std::to_string(s), std::make_shared<torch::nn::Module>());
    for (int64_t j = 0; j < repeats; ++j) {
      const std::string name = "blocks." + std::to_string(s) + "." + std::to_string(j);
      blocks_.push_back(stage->register_module(std::to_string(j), std::make_shared<EfficientNetBlockImpl>(name, in, out, st, j == 0 ? st.stride : 1, c, h)));
      block_info_.push_back({name, j == 0 ? st.stride : 1, st.expand != 1, blocks_.back()->residual});
      in = out;
    }
  }
  conv_head_ = std::make_shared<EfficientNetConvImpl>(*this, "", "conv_head", "bn2", in, 1280, 1, 1, 1, true, c, h);  // Lite: not scaled
  if (num_labels > 0) classifier_ = register_module("classifier", torch::nn::Linear(1280, num_labels));
}

torch::Tensor EfficientNetLiteClassifier::pooled_features(const torch::Tensor& pixels) {
  torch::Tensor x = stem_->forward(pixels);
  for (auto& b : blocks_) x = b->forward(x);
  x = conv_head_->forward(x);
  return hooked("pool", x.mean({2, 3}));
}

torch::Tensor EfficientNetLiteClassifier::head(const torch::Tensor& f) { return dropout_linear(classifier_, f); }

std::vector<ParamGroup> EfficientNetLiteClassifier::param_groups() {
  std::vector<ParamGroup> groups{{"stem", {}}};
  for (int64_t i = 0; i < num_layers(); ++i) groups.push_back({"layer." + std::to_string(i), {}});
  groups.push_back({"head", {}});
  const int64_t last = num_layers() - 1;  // the head convolution
  for (const auto& p : named_parameters(true)) {
    const std::string& n = p.key();
    int64_t layer = -2;  // the classifier
    if (n.rfind("conv_stem.", 0) == 0 || n.rfind("bn1.", 0) == 0) layer = -1;
    else if (n.rfind("conv_head.", 0) == 0 || n.rfind("bn2.", 0) == 0) layer = last;
    else
      for (size_t i = 0; i < block_info_.size(); ++i)
        if (n.rfind(block_info_[i].name + ".", 0) == 0) layer = static_cast<int64_t>(i);
    if (layer == -1) groups.front().params.emplace_back(n, p.value());
    else if (layer >= 0) groups[1 + layer].params.emplace_back(n, p.value());
    else groups.back().params.emplace_back(n, p.value());
  }
  return groups;
}

}  // namespace kotsu
