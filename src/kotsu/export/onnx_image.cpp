#include "kotsu/export/onnx_image.hpp"

#include <torch/torch.h>

#include "kotsu/core/error.hpp"
#include "kotsu/export/onnx_layers.hpp"
#include "kotsu/models/efficientnet.hpp"
#include "kotsu/models/mobilenet.hpp"

namespace kotsu {

namespace {

struct ConvSpec {
  int64_t stride = 1, groups = 1;
  bool same_upper = false;  // TensorFlow "SAME" (the odd pixel after); otherwise (k - 1) / 2 on each side
};

// Conv (no bias) named `conv` + BatchNormalization named `n` (their tensors `conv`.weight, `n`.weight, ...).
std::string conv_bn_named(OnnxGraph& g, const std::string& x, const OnnxWeights& w, const std::string& conv, const std::string& n,
                          const ConvSpec& s, double eps) {
  const torch::Tensor& k = w.at(conv + ".weight");
  const int64_t kh = k.size(2), kw = k.size(3);
  std::vector<OnnxAttr> attrs = {{"kernel_shape", std::vector<int64_t>{kh, kw}},
                                 {"strides", std::vector<int64_t>{s.stride, s.stride}},
                                 {"group", s.groups}};
  if (s.same_upper) attrs.push_back({"auto_pad", std::string("SAME_UPPER")});
  else attrs.push_back({"pads", std::vector<int64_t>{(kh - 1) / 2, (kw - 1) / 2, (kh - 1) / 2, (kw - 1) / 2}});
  auto c = g.op("Conv", {x, g.weight(conv + ".weight", k)}, attrs, conv);
  return g.op("BatchNormalization", {c, g.weight(n + ".weight", w.at(n + ".weight")), g.weight(n + ".bias", w.at(n + ".bias")),
                                     g.weight(n + ".running_mean", w.at(n + ".running_mean")),
                                     g.weight(n + ".running_var", w.at(n + ".running_var"))},
              {{"epsilon", static_cast<float>(eps)}}, n);
}

// Hugging Face's layout: `prefix`.convolution + `prefix`.normalization.
std::string conv_bn(OnnxGraph& g, const std::string& x, const OnnxWeights& w, const std::string& prefix, const ConvSpec& s, double eps) {
  return conv_bn_named(g, x, w, prefix + ".convolution", prefix + ".normalization", s, eps);
}

// EfficientNet-Lite under timm's names (models/efficientnet): ReLU6 after every conv but the projections.
std::string efficientnet(OnnxGraph& g, const ImageConfig& c, const OnnxWeights& w, const std::vector<EfficientNetBlockInfo>& blocks) {
  auto relu6 = [&](const std::string& x) { return g.op("Clip", {x, g.scalar(0.0f), g.scalar(6.0f)}); };
  auto cbn = [&](const std::string& x, const std::string& conv, const std::string& bn, int64_t stride, int64_t groups) {
    return conv_bn_named(g, x, w, conv, bn, {stride, groups, c.tf_padding}, c.layer_norm_eps);
  };
  std::string x = relu6(cbn("pixel_values", "conv_stem", "bn1", 2, 1));
  for (const auto& b : blocks) {
    const std::string in = x, p = b.name + ".";
    if (b.inverted) {
      x = relu6(cbn(x, p + "conv_pw", p + "bn1", 1, 1));
      x = relu6(cbn(x, p + "conv_dw", p + "bn2", b.stride, w.at(p + "conv_dw.weight").size(0)));
      x = cbn(x, p + "conv_pwl", p + "bn3", 1, 1);
    } else {
      x = relu6(cbn(x, p + "conv_dw", p + "bn1", b.stride, w.at(p + "conv_dw.weight").size(0)));
      x = cbn(x, p + "conv_pw", p + "bn2", 1, 1);
    }
    if (b.residual) x = g.op("Add", {in, x}, {}, b.name);
  }
  return relu6(cbn(x, "conv_head", "bn2", 1, 1));
}

std::string resnet(OnnxGraph& g, const ImageConfig& c, const OnnxWeights& w) {
  auto x = g.op("Relu", {conv_bn(g, "pixel_values", w, "resnet.embedder.embedder", {2, 1, false}, c.layer_norm_eps)});
  x = g.op("MaxPool", {x}, {{"kernel_shape", std::vector<int64_t>{3, 3}}, {"strides", std::vector<int64_t>{2, 2}},
                            {"pads", std::vector<int64_t>{1, 1, 1, 1}}});
  const bool bottleneck = c.layer_type == "bottleneck";
  for (size_t s = 0; s < c.hidden_sizes.size(); ++s) {
    for (int64_t l = 0; l < c.depths[s]; ++l) {
      const int64_t stride = l == 0 && (s > 0 || c.downsample_in_first_stage) ? 2 : 1;
      const std::string p = "resnet.encoder.stages." + std::to_string(s) + ".layers." + std::to_string(l);
      auto conv = [&](const std::string& in, int idx, int64_t st, bool relu) {
        auto y = conv_bn(g, in, w, p + ".layer." + std::to_string(idx), {st, 1, false}, c.layer_norm_eps);
        return relu ? g.op("Relu", {y}) : y;
      };
      std::string y = bottleneck ? conv(conv(conv(x, 0, 1, true), 1, stride, true), 2, 1, false)
                                 : conv(conv(x, 0, stride, true), 1, 1, false);
      const std::string shortcut = w.has(p + ".shortcut.convolution.weight")
                                       ? conv_bn(g, x, w, p + ".shortcut", {stride, 1, false}, c.layer_norm_eps) : x;
      x = g.op("Relu", {g.op("Add", {y, shortcut})}, {}, p);
    }
  }
  return x;
}

std::string mobilenet(OnnxGraph& g, const ImageConfig& c, const OnnxWeights& w, const std::vector<MobileNetConvInfo>& convs) {
  std::string x = "pixel_values", block_input;
  for (size_t i = 0; i < convs.size(); ++i) {
    const MobileNetConvInfo& info = convs[i];
    // a V2 block (mobilenet_v2.layer.N) is expand_1x1, conv_3x3, reduce_1x1; residual when shapes keep
    const bool expand = info.name.find(".layer.") != std::string::npos && info.name.size() > 11 &&
                        info.name.compare(info.name.size() - 11, 11, ".expand_1x1") == 0;
    if (expand) block_input = x;
    x = conv_bn(g, x, w, info.name, {info.stride, info.groups, c.tf_padding}, c.layer_norm_eps);
    if (info.activation) {
      x = c.hidden_act == "relu6" ? g.op("Clip", {x, g.scalar(0.0f), g.scalar(6.0f)}) : g.op("Relu", {x});
    }
    const bool reduce = info.name.find(".layer.") != std::string::npos && info.name.size() > 11 &&
                        info.name.compare(info.name.size() - 11, 11, ".reduce_1x1") == 0;
    if (reduce && i >= 2 && convs[i - 2].in == info.out && convs[i - 1].stride == 1) x = g.op("Add", {block_input, x});
  }
  return x;
}

std::string darknet(OnnxGraph& g, const ImageConfig& c, const OnnxWeights& w) {
  std::string x = "pixel_values";
  for (size_t i = 0; i < c.conv_layers.size(); ++i) {
    const std::string p = "darknet.layer." + std::to_string(i);
    x = g.op("LeakyRelu", {conv_bn(g, x, w, p, {1, 1, false}, c.layer_norm_eps)}, {{"alpha", static_cast<float>(c.leaky_slope)}});
    if (c.conv_layers[i][2])  // 2x2 stride 2; an odd side's last row/column pooled alone (TensorFlow's SAME)
      x = g.op("MaxPool", {x}, {{"kernel_shape", std::vector<int64_t>{2, 2}}, {"strides", std::vector<int64_t>{2, 2}}, {"ceil_mode", int64_t(1)}});
  }
  return x;
}

}  // namespace

void build_image_classifier_onnx(OnnxGraph& g, ImageModel& m) {
  const ImageConfig& c = m.config;
  if (m.model->num_labels() == 0) throw Error("onnx export", "labels", "the model has no classification head (a backbone); fine-tune it first");
  const OnnxWeights w = weights_of(*m.model);
  g.input("pixel_values", OnnxType::Float, {std::string("batch"), c.num_channels, std::string("height"), std::string("width")});
  std::string x, head;
  if (c.model_type == "resnet") {
    x = resnet(g, c, w);
    head = "classifier.1";
  } else if (c.model_type == "mobilenet_v2") {
    x = mobilenet(g, c, w, dynamic_cast<MobileNetV2Classifier&>(*m.model).convs());
    head = "classifier";
  } else if (c.model_type == "mobilenet_v1") {
    x = mobilenet(g, c, w, dynamic_cast<MobileNetV1Classifier&>(*m.model).convs());
    head = "classifier";
  } else if (c.model_type == "darknet") {
    x = darknet(g, c, w);
    head = "classifier";
  } else if (c.model_type == "efficientnet_lite") {
    x = efficientnet(g, c, w, dynamic_cast<EfficientNetLiteClassifier&>(*m.model).blocks());
    head = "classifier";
  } else {
    throw Error("onnx export", "model_type", "'" + c.model_type + "' has no ONNX export");
  }
  auto pooled = g.op("Flatten", {g.op("GlobalAveragePool", {x})}, {{"axis", int64_t(1)}}, "features");
  auto logits = onnx_linear(g, pooled, w, head);
  auto probs = g.op("Softmax", {logits}, {{"axis", int64_t(-1)}});
  const int64_t L = m.model->num_labels();
  g.output(logits, "logits", OnnxType::Float, {std::string("batch"), L});
  g.output(probs, "probabilities", OnnxType::Float, {std::string("batch"), L});
}

}  // namespace kotsu
