#include "kotsu/models/darknet.hpp"

#include <torch/torch.h>

#include "kotsu/core/error.hpp"
#include "kotsu/models/ops.hpp"

namespace kotsu {

namespace F = torch::nn::functional;

struct DarknetConvImpl : torch::nn::Module {
  int64_t kernel;
  bool pool;
  double slope;
  std::string name;
  std::shared_ptr<ImageClassifier::ActivationHook> hook;
  torch::nn::Conv2d convolution{nullptr};
  torch::nn::BatchNorm2d normalization{nullptr};
  DarknetConvImpl(std::string n, int64_t in, int64_t out, int64_t k, bool p, const ImageConfig& c,
                  std::shared_ptr<ImageClassifier::ActivationHook> h)
      : kernel(k), pool(p), slope(c.leaky_slope), name(std::move(n)), hook(std::move(h)) {
    // Keras "same" with stride 1 and an odd kernel pads (k - 1) / 2 on every side
    convolution = register_module("convolution", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).padding((k - 1) / 2).bias(false)));
    normalization = register_module("normalization", torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(out).eps(c.layer_norm_eps).momentum(0.1)));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = F::leaky_relu(normalization(convolution(x)), F::LeakyReLUFuncOptions().negative_slope(slope));
    if (*hook) x = (*hook)(name, x);
    if (!pool) return x;
    // 2x2 stride 2 "same": an odd side gets one -inf column/row after (TensorFlow's padding)
    const int64_t ph = x.size(2) % 2, pw = x.size(3) % 2;
    if (ph || pw) x = F::pad(x, F::PadFuncOptions({0, pw, 0, ph}).value(-std::numeric_limits<float>::infinity()));
    return F::max_pool2d(x, F::MaxPool2dFuncOptions(2).stride(2));
  }
};

DarknetClassifier::DarknetClassifier(const ImageConfig& c, int64_t num_labels) : ImageClassifier(c), num_labels_(num_labels) {
  auto base = register_module("darknet", std::make_shared<torch::nn::Module>());
  auto layers = base->register_module("layer", std::make_shared<torch::nn::Module>());
  int64_t in = c.num_channels;
  for (size_t i = 0; i < c.conv_layers.size(); ++i) {
    const auto& l = c.conv_layers[i];
    const std::string n = "darknet.layer." + std::to_string(i);
    layers_.push_back(layers->register_module(std::to_string(i), std::make_shared<DarknetConvImpl>(n, in, l[0], l[1], l[2] != 0, c, hook_)));
    in = l[0];
  }
  feature_size_ = in;
  if (num_labels > 0) classifier_ = register_module("classifier", torch::nn::Linear(feature_size_, num_labels));
}

torch::Tensor DarknetClassifier::pooled_features(const torch::Tensor& pixels) {
  torch::Tensor x = pixels;
  for (auto& l : layers_) x = l->forward(x);
  return hooked("darknet.pool", x.mean({2, 3}));
}

torch::Tensor DarknetClassifier::head(const torch::Tensor& f) {
  return dropout_linear(classifier_, f);
}

std::vector<ParamGroup> DarknetClassifier::param_groups() {
  return group_params("darknet.layer.0.", [](const std::string& n) -> int64_t {
    const std::string lp = "darknet.layer.";
    if (n.rfind(lp, 0) == 0) return std::stoll(n.substr(lp.size())) - 1;
    return -1;
  });
}

}  // namespace kotsu

namespace kotsu {

namespace {
const nlohmann::json& keras_layers(const TfjsModel& m) {
  static const nlohmann::json empty = nlohmann::json::array();
  const auto& t = m.topology;
  if (!t.is_object() || !t.contains("model_config")) return empty;
  const auto& cfg = t["model_config"];
  if (!cfg.is_object() || !cfg.contains("config")) return empty;
  const auto& c = cfg["config"];
  if (c.is_object() && c.contains("layers") && c["layers"].is_array()) return c["layers"];
  if (c.is_array()) return c;  // Sequential
  return empty;
}
std::string class_of(const nlohmann::json& l) { return l.value("class_name", ""); }
}  // namespace

bool is_keras_conv_stack(const TfjsModel& m) {
  for (const auto& l : keras_layers(m))
    if (class_of(l) == "Conv2D") return true;
  return false;
}

DarknetImport darknet_from_tfjs(const TfjsModel& m, std::vector<std::string> labels) {
  const auto& layers = keras_layers(m);
  DarknetImport r;
  ImageConfig& c = r.config;
  c.model_type = "darknet";
  c.tf_padding = false;
  auto weight = [&](const std::string& name) -> torch::Tensor {
    const TfjsWeight* w = m.find(name);
    if (!w || !w->value.defined()) throw Error(m.path, name, "weight missing from the manifest");
    return w->value.to(torch::kFloat32);
  };
  bool eps_set = false;
  int64_t in = 3;
  size_t i = 0;
  auto fail = [&](const nlohmann::json& l, const std::string& why) {
    throw Error(m.path, "layer " + l.value("config", nlohmann::json::object()).value("name", std::to_string(i)),
                "not a Darknet-style conv stack kotsu can import: " + why);
  };
  for (; i < layers.size(); ++i) {
    const auto& l = layers[i];
    const auto& cfg = l.value("config", nlohmann::json::object());
    const std::string cls = class_of(l);
    if (cls == "InputLayer") {
      auto shape = cfg.value("batch_input_shape", nlohmann::json::array());
      if (shape.size() != 4 || !shape[1].is_number_integer() || shape[1] != shape[2]) fail(l, "input must be square NHWC");
      c.image_size = shape[1].get<int64_t>();
      c.num_channels = in = shape[3].get<int64_t>();
      continue;
    }
    if (cls == "GlobalAveragePooling2D" || cls == "Activation" || cls == "Softmax") continue;
    if (cls != "Conv2D") fail(l, "unexpected " + cls);
    const std::string name = cfg.value("name", "");
    torch::Tensor k = weight(name + "/kernel");  // [kh, kw, in, out]
    if (k.dim() != 4 || k.size(0) != k.size(1) || k.size(2) != in) fail(l, "kernel shape " + c10::str(k.sizes()));
    const auto strides = cfg.value("strides", nlohmann::json::array({1, 1}));
    if (strides != nlohmann::json::array({1, 1}) || cfg.value("padding", "") != "same") fail(l, "needs stride 1 and same padding");
    const int64_t out = k.size(3);
    if (cfg.value("use_bias", false)) {  // the classifier: 1x1 conv with bias, then the global pool
      if (k.size(0) != 1) fail(l, "the classifier conv must be 1x1");
      r.tensors.emplace_back("classifier.weight", k.reshape({in, out}).t().contiguous());
      r.tensors.emplace_back("classifier.bias", weight(name + "/bias"));
      if (labels.empty())
        for (int64_t j = 0; j < out; ++j) labels.push_back("LABEL_" + std::to_string(j));
      if (static_cast<int64_t>(labels.size()) != out)
        throw Error(m.path, "labels", std::to_string(labels.size()) + " labels for a classifier with " + std::to_string(out) + " outputs");
      c.labels = labels;
      ++i;
      break;
    }
    if (i + 2 >= layers.size() || class_of(layers[i + 1]) != "BatchNormalization" || class_of(layers[i + 2]) != "LeakyReLU")
      fail(l, "a conv must be followed by BatchNormalization and LeakyReLU");
    const auto& bn = layers[i + 1]["config"];
    const std::string bname = bn.value("name", "");
    const double eps = bn.value("epsilon", 1e-3);
    if (eps_set && eps != c.layer_norm_eps) fail(layers[i + 1], "batch norms with different epsilons");
    c.layer_norm_eps = eps;
    eps_set = true;
    c.leaky_slope = layers[i + 2]["config"].value("alpha", 0.3);
    bool pool = false;
    if (i + 3 < layers.size() && class_of(layers[i + 3]) == "MaxPooling2D") {
      const auto& pc = layers[i + 3]["config"];
      if (pc.value("pool_size", nlohmann::json::array()) != nlohmann::json::array({2, 2}) ||
          pc.value("strides", nlohmann::json::array()) != nlohmann::json::array({2, 2}))
        fail(layers[i + 3], "only 2x2 stride-2 max pools");
      pool = true;
    }
    const std::string p = "darknet.layer." + std::to_string(c.conv_layers.size());
    r.tensors.emplace_back(p + ".convolution.weight", k.permute({3, 2, 0, 1}).contiguous());
    r.tensors.emplace_back(p + ".normalization.weight", weight(bname + "/gamma"));
    r.tensors.emplace_back(p + ".normalization.bias", weight(bname + "/beta"));
    r.tensors.emplace_back(p + ".normalization.running_mean", weight(bname + "/moving_mean"));
    r.tensors.emplace_back(p + ".normalization.running_var", weight(bname + "/moving_variance"));
    c.conv_layers.push_back({out, k.size(0), pool ? 1 : 0});
    in = out;
    i += pool ? 3 : 2;
  }
  for (; i < layers.size(); ++i)
    if (class_of(layers[i]) != "GlobalAveragePooling2D" && class_of(layers[i]) != "Activation" && class_of(layers[i]) != "Softmax")
      fail(layers[i], "unexpected " + class_of(layers[i]) + " after the classifier");
  if (c.conv_layers.empty()) throw Error(m.path, "modelTopology", "no conv layers");
  r.preprocess.crop_height = r.preprocess.crop_width = c.image_size;
  r.preprocess.resize_shortest = static_cast<int64_t>(std::lround(c.image_size / 0.875));
  r.preprocess.mean.assign(c.num_channels, 0.0);  // Keras' x / 255
  r.preprocess.std.assign(c.num_channels, 1.0);
  return r;
}

}  // namespace kotsu
