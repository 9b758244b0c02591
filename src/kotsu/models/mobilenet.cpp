#include "kotsu/models/mobilenet.hpp"

#include <torch/torch.h>

#include <cmath>

#include "kotsu/models/ops.hpp"

namespace kotsu {

namespace F = torch::nn::functional;

using Hook = std::shared_ptr<ImageClassifier::ActivationHook>;

struct MobileNetConvImpl : torch::nn::Module {
  MobileNetConvInfo info;
  bool tf_padding, relu6;
  Hook hook;
  torch::nn::Conv2d convolution{nullptr};
  torch::nn::BatchNorm2d normalization{nullptr};
  MobileNetConvImpl(MobileNetConvInfo i, const ImageConfig& c, Hook h)
      : info(std::move(i)), tf_padding(c.tf_padding), relu6(c.hidden_act == "relu6"), hook(std::move(h)) {
    convolution = register_module(
        "convolution", torch::nn::Conv2d(torch::nn::Conv2dOptions(info.in, info.out, info.kernel)
                                             .stride(info.stride).groups(info.groups).bias(false)
                                             .padding(tf_padding ? 0 : (info.kernel - 1) / 2)));
    // momentum 0.1 in PyTorch's sense (Hugging Face copies TensorFlow's 0.997, which in PyTorch's
    // convention would replace the running statistics by each batch's)
    normalization = register_module(
        "normalization", torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(info.out).eps(c.layer_norm_eps).momentum(0.1)));
  }
  torch::Tensor forward(torch::Tensor x) {
    if (tf_padding) x = pad_same(x, info.kernel, info.stride);
    x = normalization(convolution(x));
    if (info.activation) x = relu6 ? torch::clamp(x, 0.0, 6.0) : torch::relu(x);
    return *hook ? (*hook)(info.name, x) : x;
  }
};

struct MobileNetV2BlockImpl : torch::nn::Module {
  std::shared_ptr<MobileNetConvImpl> expand_1x1, conv_3x3, reduce_1x1;
  bool residual;
  std::string name;
  Hook hook;
  MobileNetV2BlockImpl(const std::string& name_, int64_t in, int64_t out, int64_t stride, const ImageConfig& c, Hook h)
      : name(name_), hook(h) {
    const int64_t mid = make_divisible(std::round(in * c.expand_ratio), c.depth_divisible_by, c.min_depth);
    expand_1x1 = register_module("expand_1x1", std::make_shared<MobileNetConvImpl>(MobileNetConvInfo{name + ".expand_1x1", in, mid, 1, 1, 1, true}, c, h));
    conv_3x3 = register_module("conv_3x3", std::make_shared<MobileNetConvImpl>(MobileNetConvInfo{name + ".conv_3x3", mid, mid, 3, stride, mid, true}, c, h));
    reduce_1x1 = register_module("reduce_1x1", std::make_shared<MobileNetConvImpl>(MobileNetConvInfo{name + ".reduce_1x1", mid, out, 1, 1, 1, false}, c, h));
    residual = stride == 1 && in == out;
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor y = reduce_1x1->forward(conv_3x3->forward(expand_1x1->forward(x)));
    if (!residual) return y;
    y = x + y;
    return *hook ? (*hook)(name + ".add", y) : y;
  }
};

int64_t make_divisible(double value, int64_t divisor, int64_t min_value) {
  if (min_value <= 0) min_value = divisor;
  int64_t v = std::max<int64_t>(min_value, static_cast<int64_t>(value + divisor / 2.0) / divisor * divisor);
  if (v < 0.9 * value) v += divisor;
  return v;
}

// ---- V2 ----

MobileNetV2Classifier::MobileNetV2Classifier(const ImageConfig& c, int64_t num_labels)
    : ImageClassifier(c), num_labels_(num_labels) {
  const Hook& h = hook_;
  auto depth = [&](double ch) {
    return make_divisible(std::round(ch * c.depth_multiplier), c.depth_divisible_by, c.min_depth);
  };
  const std::vector<int64_t> widths = {16, 24, 24, 32, 32, 32, 64, 64, 64, 64, 96, 96, 96, 160, 160, 160, 320};
  const std::vector<int64_t> strides = {2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1};
  std::vector<int64_t> ch;
  for (int64_t w : widths) ch.push_back(depth(w));
  auto base = register_module("mobilenet_v2", std::make_shared<torch::nn::Module>());
  auto stem = base->register_module("conv_stem", std::make_shared<torch::nn::Module>());
  const std::string sp = "mobilenet_v2.conv_stem.";
  const int64_t stem_out = depth(32);
  first_conv_ = stem->register_module("first_conv", std::make_shared<MobileNetConvImpl>(MobileNetConvInfo{sp + "first_conv", c.num_channels, stem_out, 3, 2, 1, true}, c, h));
  int64_t mid = stem_out;
  if (!c.first_layer_is_expansion) {
    stem_expand_ = stem->register_module("expand_1x1", std::make_shared<MobileNetConvImpl>(MobileNetConvInfo{sp + "expand_1x1", stem_out, stem_out, 1, 1, 1, true}, c, h));
  }
  stem_dw_ = stem->register_module("conv_3x3", std::make_shared<MobileNetConvImpl>(MobileNetConvInfo{sp + "conv_3x3", mid, mid, 3, 1, mid, true}, c, h));
  stem_reduce_ = stem->register_module("reduce_1x1", std::make_shared<MobileNetConvImpl>(MobileNetConvInfo{sp + "reduce_1x1", mid, ch[0], 1, 1, 1, false}, c, h));
  auto layers = base->register_module("layer", std::make_shared<torch::nn::Module>());
  for (size_t i = 0; i < strides.size(); ++i) {
    const std::string name = "mobilenet_v2.layer." + std::to_string(i);
    blocks_.push_back(layers->register_module(std::to_string(i), std::make_shared<MobileNetV2BlockImpl>(name, ch[i], ch[i + 1], strides[i], c, hook_)));
  }
  feature_size_ = c.finegrained_output && c.depth_multiplier < 1.0 ? 1280 : depth(1280);
  conv_1x1_ = base->register_module("conv_1x1", std::make_shared<MobileNetConvImpl>(MobileNetConvInfo{"mobilenet_v2.conv_1x1", ch.back(), feature_size_, 1, 1, 1, true}, c, h));
  if (num_labels > 0) classifier_ = register_module("classifier", torch::nn::Linear(feature_size_, num_labels));
}

torch::Tensor MobileNetV2Classifier::pooled_features(const torch::Tensor& pixels) {
  torch::Tensor x = first_conv_->forward(pixels);
  if (stem_expand_) x = stem_expand_->forward(x);
  x = stem_reduce_->forward(stem_dw_->forward(x));
  for (auto& b : blocks_) x = b->forward(x);
  x = conv_1x1_->forward(x);
  return hooked("mobilenet_v2.pool", x.mean({2, 3}));
}

torch::Tensor MobileNetV2Classifier::head(const torch::Tensor& f) {
  return dropout_linear(classifier_, f);
}

std::vector<ParamGroup> MobileNetV2Classifier::param_groups() {
  const int64_t nb = static_cast<int64_t>(blocks_.size());
  return group_params("mobilenet_v2.conv_stem.", [nb](const std::string& n) -> int64_t {
    const std::string lp = "mobilenet_v2.layer.";
    if (n.rfind(lp, 0) == 0) return std::stoll(n.substr(lp.size()));
    if (n.rfind("mobilenet_v2.conv_1x1.", 0) == 0) return nb;
    return -1;
  });
}

std::vector<MobileNetConvInfo> MobileNetV2Classifier::convs() const {
  std::vector<MobileNetConvInfo> out{first_conv_->info};
  if (stem_expand_) out.push_back(stem_expand_->info);
  out.push_back(stem_dw_->info);
  out.push_back(stem_reduce_->info);
  for (auto& b : blocks_)
    for (auto* m : {b->expand_1x1.get(), b->conv_3x3.get(), b->reduce_1x1.get()}) out.push_back(m->info);
  out.push_back(conv_1x1_->info);
  return out;
}

// ---- V1 ----

MobileNetV1Classifier::MobileNetV1Classifier(const ImageConfig& c, int64_t num_labels)
    : ImageClassifier(c), num_labels_(num_labels) {
  const Hook& h = hook_;
  auto depth = [&](int64_t ch) { return std::max<int64_t>(static_cast<int64_t>(ch * c.depth_multiplier), c.min_depth); };
  const std::vector<int64_t> widths = {64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024};
  const std::vector<int64_t> strides = {1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1};
  auto base = register_module("mobilenet_v1", std::make_shared<torch::nn::Module>());
  int64_t in = depth(32);
  stem_ = base->register_module("conv_stem", std::make_shared<MobileNetConvImpl>(MobileNetConvInfo{"mobilenet_v1.conv_stem", c.num_channels, in, 3, 2, 1, true}, c, h));
  auto layers = base->register_module("layer", std::make_shared<torch::nn::Module>());
  for (size_t i = 0; i < widths.size(); ++i) {
    const int64_t out = depth(widths[i]);
    const std::string dw = std::to_string(2 * i), pw = std::to_string(2 * i + 1);
    convs_.push_back(layers->register_module(dw, std::make_shared<MobileNetConvImpl>(MobileNetConvInfo{"mobilenet_v1.layer." + dw, in, in, 3, strides[i], in, true}, c, h)));
    convs_.push_back(layers->register_module(pw, std::make_shared<MobileNetConvImpl>(MobileNetConvInfo{"mobilenet_v1.layer." + pw, in, out, 1, 1, 1, true}, c, h)));
    in = out;
  }
  feature_size_ = in;
  if (num_labels > 0) classifier_ = register_module("classifier", torch::nn::Linear(feature_size_, num_labels));
}

torch::Tensor MobileNetV1Classifier::pooled_features(const torch::Tensor& pixels) {
  torch::Tensor x = stem_->forward(pixels);
  for (auto& m : convs_) x = m->forward(x);
  return hooked("mobilenet_v1.pool", x.mean({2, 3}));
}

torch::Tensor MobileNetV1Classifier::head(const torch::Tensor& f) {
  return dropout_linear(classifier_, f);
}

std::vector<ParamGroup> MobileNetV1Classifier::param_groups() {
  return group_params("mobilenet_v1.conv_stem.", [](const std::string& n) -> int64_t {
    const std::string lp = "mobilenet_v1.layer.";
    if (n.rfind(lp, 0) == 0) return std::stoll(n.substr(lp.size())) / 2;
    return -1;
  });
}

std::vector<MobileNetConvInfo> MobileNetV1Classifier::convs() const {
  std::vector<MobileNetConvInfo> out{stem_->info};
  for (auto& m : convs_) out.push_back(m->info);
  return out;
}

}  // namespace kotsu
