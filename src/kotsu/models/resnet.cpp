#include "kotsu/models/resnet.hpp"

#include <torch/torch.h>

#include <regex>

#include "kotsu/core/error.hpp"
#include "kotsu/models/ops.hpp"

namespace kotsu {

namespace F = torch::nn::functional;
using Hook = std::shared_ptr<ImageClassifier::ActivationHook>;

struct ResNetConvImpl : torch::nn::Module {
  bool act;
  torch::nn::Conv2d convolution{nullptr};
  torch::nn::BatchNorm2d normalization{nullptr};
  ResNetConvImpl(int64_t in, int64_t out, int64_t k, int64_t stride, bool a, double eps) : act(a) {
    convolution = register_module("convolution", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).stride(stride).padding(k / 2).bias(false)));
    normalization = register_module("normalization", torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(out).eps(eps)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = normalization(convolution(x));
    return act ? torch::relu(y) : y;
  }
};

struct ResNetBlockImpl : torch::nn::Module {
  std::shared_ptr<ResNetConvImpl> shortcut;
  std::vector<std::shared_ptr<ResNetConvImpl>> convs;
  std::string name;
  Hook hook;
  ResNetBlockImpl(std::string n, int64_t in, int64_t out, int64_t stride, bool bottleneck, double eps, Hook h)
      : name(std::move(n)), hook(std::move(h)) {
    if (in != out || stride != 1) shortcut = register_module("shortcut", std::make_shared<ResNetConvImpl>(in, out, 1, stride, false, eps));
    auto layer = register_module("layer", std::make_shared<torch::nn::Module>());
    auto add = [&](int64_t a, int64_t b, int64_t k, int64_t s, bool act) {
      convs.push_back(layer->register_module(std::to_string(convs.size()), std::make_shared<ResNetConvImpl>(a, b, k, s, act, eps)));
    };
    if (bottleneck) {
      const int64_t mid = out / 4;
      add(in, mid, 1, 1, true);
      add(mid, mid, 3, stride, true);
      add(mid, out, 1, 1, false);
    } else {
      add(in, out, 3, stride, true);
      add(out, out, 3, 1, false);
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor y = x;
    for (auto& c : convs) y = c->forward(y);
    y = torch::relu(y + (shortcut ? shortcut->forward(x) : x));
    return *hook ? (*hook)(name, y) : y;
  }
};

ResNetClassifier::ResNetClassifier(const ImageConfig& c, int64_t num_labels) : ImageClassifier(c), num_labels_(num_labels) {
  auto base = register_module("resnet", std::make_shared<torch::nn::Module>());
  auto embedder = base->register_module("embedder", std::make_shared<torch::nn::Module>());
  stem_ = embedder->register_module("embedder", std::make_shared<ResNetConvImpl>(c.num_channels, c.embedding_size, 7, 2, true, c.layer_norm_eps));
  auto encoder = base->register_module("encoder", std::make_shared<torch::nn::Module>());
  auto stages = encoder->register_module("stages", std::make_shared<torch::nn::Module>());
  const bool bottleneck = c.layer_type == "bottleneck";
  int64_t in = c.embedding_size;
  for (size_t s = 0; s < c.hidden_sizes.size(); ++s) {
    auto stage = stages->register_module(std::to_string(s), std::make_shared<torch::nn::Module>());
    auto layers = stage->register_module("layers", std::make_shared<torch::nn::Module>());
    const int64_t out = c.hidden_sizes[s];
    for (int64_t l = 0; l < c.depths[s]; ++l) {
      const int64_t stride = l == 0 && (s > 0 || c.downsample_in_first_stage) ? 2 : 1;
      const std::string p = "resnet.encoder.stages." + std::to_string(s) + ".layers." + std::to_string(l);
      blocks_.push_back(layers->register_module(std::to_string(l), std::make_shared<ResNetBlockImpl>(p, l == 0 ? in : out, out, stride, bottleneck, c.layer_norm_eps, hook_)));
      block_prefix_.push_back(p + ".");
    }
    in = out;
  }
  feature_size_ = in;
  if (num_labels > 0) {
    auto head = register_module("classifier", std::make_shared<torch::nn::Module>());
    classifier_ = head->register_module("1", torch::nn::Linear(feature_size_, num_labels));
  }
}

torch::Tensor ResNetClassifier::pooled_features(const torch::Tensor& pixels) {
  torch::Tensor x = F::max_pool2d(stem_->forward(pixels), F::MaxPool2dFuncOptions(3).stride(2).padding(1));
  for (auto& b : blocks_) x = b->forward(x);
  return hooked("resnet.pool", x.mean({2, 3}));
}

torch::Tensor ResNetClassifier::head(const torch::Tensor& f) {
  return dropout_linear(classifier_, f);
}

std::vector<ParamGroup> ResNetClassifier::param_groups() {
  auto prefixes = block_prefix_;
  return group_params("resnet.embedder.", [prefixes](const std::string& n) -> int64_t {
    for (size_t i = 0; i < prefixes.size(); ++i)
      if (n.rfind(prefixes[i], 0) == 0) return static_cast<int64_t>(i);
    return -1;
  });
}

bool has_torchvision_resnet_names(const std::map<std::string, torch::Tensor>& t) {
  return t.count("conv1.weight") && t.count("bn1.weight") && t.count("layer1.0.conv1.weight");
}

std::map<std::string, torch::Tensor> resnet_hf_names(const std::map<std::string, torch::Tensor>& t) {
  static const std::regex block(R"(^layer(\d+)\.(\d+)\.(conv|bn)(\d)\.(.+)$)");
  static const std::regex down(R"(^layer(\d+)\.(\d+)\.downsample\.([01])\.(.+)$)");
  auto part = [](const std::string& kind) { return kind == "conv" || kind == "0" ? "convolution" : "normalization"; };
  std::map<std::string, torch::Tensor> out;
  for (const auto& [name, v] : t) {
    std::smatch m;
    std::string n;
    if (name.rfind("conv1.", 0) == 0) n = "resnet.embedder.embedder.convolution." + name.substr(6);
    else if (name.rfind("bn1.", 0) == 0) n = "resnet.embedder.embedder.normalization." + name.substr(4);
    else if (name.rfind("fc.", 0) == 0) n = "classifier.1." + name.substr(3);
    else if (std::regex_match(name, m, block))
      n = "resnet.encoder.stages." + std::to_string(std::stoi(m[1]) - 1) + ".layers." + m[2].str() + ".layer." +
          std::to_string(std::stoi(m[4]) - 1) + "." + part(m[3]) + "." + m[5].str();
    else if (std::regex_match(name, m, down))
      n = "resnet.encoder.stages." + std::to_string(std::stoi(m[1]) - 1) + ".layers." + m[2].str() + ".shortcut." +
          part(m[3]) + "." + m[4].str();
    else
      n = name;  // left as is: reported as unexpected by the loader
    out[n] = v;
  }
  return out;
}

}  // namespace kotsu
