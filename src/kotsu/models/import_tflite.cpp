#include "kotsu/models/import_tflite.hpp"

#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "kotsu/core/error.hpp"
#include "kotsu/models/image_model.hpp"
#include "kotsu/models/import_tfjs.hpp"
#include "kotsu/models/mobilenet.hpp"

namespace kotsu {

namespace fs = std::filesystem;

namespace {

constexpr int kConv = 3, kDepthwise = 4, kFullyConnected = 9, kAdd = 0, kAvgPool = 1, kMean = 40;

struct Found {
  std::vector<const TfliteOp*> convs;  // the backbone's convolutions, in order
  const TfliteOp* classifier = nullptr;
  bool has_add = false;
};

Found scan(const TfliteModel& m) {
  Found f;
  bool pooled = false;
  for (const TfliteOp& o : m.ops) {
    if (o.code == kAdd) f.has_add = true;
    if (o.code == kAvgPool || o.code == kMean) pooled = true;
    if (o.code != kConv && o.code != kDepthwise && o.code != kFullyConnected) continue;
    if (o.inputs.size() < 2 || o.inputs[1] < 0 || !m.tensor(o.inputs[1]).constant())
      throw Error(m.path, o.name, "has no constant weights");
    if (pooled) {
      if (f.classifier) throw Error(m.path, o.name, "more than one layer after the global pooling: not a MobileNet classifier");
      f.classifier = &o;
    } else {
      if (o.code == kFullyConnected) throw Error(m.path, o.name, "a fully connected layer before the pooling: not a MobileNet");
      f.convs.push_back(&o);
    }
  }
  if (f.convs.empty()) throw Error(m.path, "operators", "no convolutions: not an image model");
  return f;
}

// [out, in, kh, kw] from TFLite's [out, kh, kw, in] (conv) or [1, kh, kw, out] (depthwise).
torch::Tensor torch_filter(const TfliteModel& m, const TfliteOp& o) {
  torch::Tensor w = m.dequantize(o.inputs[1]);
  if (w.dim() != 4) throw Error(m.path, m.tensor(o.inputs[1]).name, "filter is not 4-d");
  return (o.code == kDepthwise ? w.permute({3, 0, 1, 2}) : w.permute({0, 3, 1, 2})).contiguous();
}

std::string fits(const TfliteModel& m, const std::vector<const TfliteOp*>& ops, const std::vector<MobileNetConvInfo>& want) {
  if (ops.size() != want.size())
    return std::to_string(ops.size()) + " convolutions, the layout has " + std::to_string(want.size());
  for (size_t i = 0; i < ops.size(); ++i) {
    const TfliteOp& o = *ops[i];
    const MobileNetConvInfo& w = want[i];
    auto f = torch_filter(m, o).sizes();
    const bool dw = o.code == kDepthwise;
    const std::string at = "convolution " + std::to_string(i) + " (" + w.name + ")";
    if (dw != (w.groups > 1)) return at + " is " + (dw ? "" : "not ") + "depthwise";
    if (f[0] != w.out || f[1] != w.in / w.groups || f[2] != w.kernel || f[3] != w.kernel)
      return at + " has filter " + c10::str(f) + ", the layout needs [" + std::to_string(w.out) + ", " +
             std::to_string(w.in / w.groups) + ", " + std::to_string(w.kernel) + ", " + std::to_string(w.kernel) + "]";
    if (o.stride_h != w.stride || o.stride_w != w.stride) return at + " has stride " + std::to_string(o.stride_h);
    if (!o.same_padding && w.kernel > 1) return at + " uses VALID padding";
    if (o.dilation_h != 1 || o.dilation_w != 1) return at + " is dilated";
    if (o.activation != TfliteActivation::None && o.activation != TfliteActivation::Relu6)
      return at + " has an activation other than ReLU6";
    if (o.activation == TfliteActivation::Relu6 && !w.activation) return at + " has a ReLU6 the layout does not";
  }
  return "";
}

}  // namespace

TfliteImport mobilenet_from_tflite(const TfliteModel& m, std::vector<std::string> labels) {
  Found f = scan(m);
  if (m.inputs.empty()) throw Error(m.path, "subgraphs[0].inputs", "the model has no input");
  const TfliteTensor& in = m.tensor(m.inputs[0]);
  if (in.shape.size() != 4 || in.shape[1] != in.shape[2] || in.shape[1] < 8)
    throw Error(m.path, "input " + in.name, "is not a square NHWC image (shape " + c10::str(in.shape) + ")");
  ImageConfig c;
  c.model_type = f.has_add ? "mobilenet_v2" : "mobilenet_v1";
  c.image_size = in.shape[1];
  c.num_channels = in.shape[3];
  int64_t num_labels = 0;
  if (f.classifier) {
    num_labels = m.tensor(f.classifier->inputs[1]).shape[0];
    if (labels.empty())
      for (int64_t i = 0; i < num_labels; ++i) labels.push_back("LABEL_" + std::to_string(i));
    if (static_cast<int64_t>(labels.size()) != num_labels)
      throw Error(m.path, "labels", std::to_string(labels.size()) + " labels for a classifier with " +
                                        std::to_string(num_labels) + " outputs");
    c.labels = labels;
  }
  // the width multiplier: the first one whose layout matches every convolution
  std::shared_ptr<ImageClassifier> model;
  std::vector<MobileNetConvInfo> convs;
  std::string why;
  for (double mult : {1.0, 0.75, 0.5, 0.35, 0.25, 1.3, 1.4}) {
    c.depth_multiplier = mult;
    c.layer_norm_eps = 1e-3;
    auto cand = make_image_classifier(c, num_labels);
    auto want = c.model_type == "mobilenet_v2" ? static_cast<MobileNetV2Classifier&>(*cand).convs()
                                               : static_cast<MobileNetV1Classifier&>(*cand).convs();
    std::string w = fits(m, f.convs, want);
    if (w.empty()) {
      model = cand;
      convs = want;
      break;
    }
    if (mult == 1.0) why = w;
  }
  if (!model)
    throw Error(m.path, "operators", "not a " + c.model_type + " layout kotsu recognises at any width multiplier (at 1.0: " + why + ")");

  TfliteImport r;
  torch::NoGradGuard ng;
  for (size_t i = 0; i < convs.size(); ++i) {
    const TfliteOp& o = *f.convs[i];
    const std::string& n = convs[i].name;
    const int64_t out = convs[i].out;
    torch::Tensor bias = o.inputs.size() > 2 && o.inputs[2] >= 0 ? m.dequantize(o.inputs[2]).reshape({-1})
                                                                  : torch::zeros({out});
    if (bias.numel() != out) throw Error(m.path, m.tensor(o.inputs[2]).name, "bias size does not match the filter");
    r.tensors.emplace_back(n + ".convolution.weight", torch_filter(m, o));
    // the folded batch norm: y = 1 * (x - 0) / sqrt((1 - eps) + eps) + bias
    r.tensors.emplace_back(n + ".normalization.weight", torch::ones({out}));
    r.tensors.emplace_back(n + ".normalization.bias", bias);
    r.tensors.emplace_back(n + ".normalization.running_mean", torch::zeros({out}));
    r.tensors.emplace_back(n + ".normalization.running_var", torch::full({out}, 1.0 - c.layer_norm_eps));
  }
  if (f.classifier) {
    const TfliteOp& o = *f.classifier;
    torch::Tensor w = m.dequantize(o.inputs[1]).reshape({num_labels, -1});
    if (w.size(1) != model->feature_size())
      throw Error(m.path, o.name, "classifier takes " + std::to_string(w.size(1)) + " features, the backbone gives " +
                                      std::to_string(model->feature_size()));
    torch::Tensor b = o.inputs.size() > 2 && o.inputs[2] >= 0 ? m.dequantize(o.inputs[2]).reshape({-1})
                                                               : torch::zeros({num_labels});
    r.tensors.emplace_back("classifier.weight", w.contiguous());
    r.tensors.emplace_back("classifier.bias", b);
  }
  // preprocessing: TF's central crop of 87.5% and the input quantization as mean/std in [0, 1] units
  r.preprocess.crop_height = r.preprocess.crop_width = c.image_size;
  r.preprocess.resize_shortest = static_cast<int64_t>(std::lround(c.image_size / 0.875));
  if (in.quantized()) {
    const double zp = in.zero_point.empty() ? 0.0 : static_cast<double>(in.zero_point[0]);
    const double mean = zp / 255.0, stdv = 1.0 / (255.0 * in.scale[0]);
    r.preprocess.mean.assign(c.num_channels, mean);
    r.preprocess.std.assign(c.num_channels, stdv);
  } else {  // float input: MobileNet's usual [-1, 1]
    r.preprocess.mean.assign(c.num_channels, 0.5);
    r.preprocess.std.assign(c.num_channels, 0.5);
  }
  r.config = c;
  return r;
}

ImportReport import_tflite(const std::string& src, const std::string& out, const std::string& labels_file, bool overwrite) {
  if (!fs::exists(src)) throw Error(src, "", "no such file");
  check_model_dir_target(out, overwrite);
  std::vector<std::string> labels = labels_file.empty() ? std::vector<std::string>() : read_label_lines(labels_file);
  TfliteModel m = read_tflite(src);
  TfliteImport imp = mobilenet_from_tflite(m, labels);
  const std::string extra = "preprocessing: shorter side " + std::to_string(imp.preprocess.resize_shortest) + ", crop " +
                            std::to_string(imp.preprocess.crop_height) + ", mean " + std::to_string(imp.preprocess.mean[0]) +
                            ", std " + std::to_string(imp.preprocess.std[0]);
  return write_imported_image_model(out, overwrite, imp.config, imp.preprocess, imp.tensors, "tflite", extra);
}

}  // namespace kotsu
