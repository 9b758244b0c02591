#include "kotsu/models/image_classifier.hpp"

#include <torch/torch.h>

#include <cctype>

#include "kotsu/core/error.hpp"
#include "kotsu/models/darknet.hpp"
#include "kotsu/models/efficientnet.hpp"
#include "kotsu/models/mobilenet.hpp"
#include "kotsu/models/ops.hpp"
#include "kotsu/models/resnet.hpp"

namespace kotsu {

namespace {
// Whether parameter `name` belongs to a batch norm: Hugging Face's "...normalization.weight", timm's
// "bn1.weight" / "blocks.0.0.bn2.bias".
bool is_norm(const std::string& name) {
  if (name.find("normalization") != std::string::npos) return true;
  const size_t dot = name.rfind('.');
  if (dot == std::string::npos) return false;
  const size_t start = name.rfind('.', dot - 1);
  const std::string module = name.substr(start == std::string::npos ? 0 : start + 1, dot - (start == std::string::npos ? 0 : start + 1));
  return module.size() >= 3 && module.rfind("bn", 0) == 0 && std::isdigit(static_cast<unsigned char>(module[2]));
}

void init_module(torch::nn::Module& m, double range) {
  torch::NoGradGuard ng;
  for (auto& p : m.named_parameters(true)) {
    const std::string& n = p.key();
    torch::Tensor t = p.value();
    const bool norm = is_norm(n);
    if (n.size() >= 4 && n.substr(n.size() - 4) == "bias") t.zero_();
    else if (norm) t.fill_(1.0);
    else t.normal_(0.0, range);
  }
  for (auto& b : m.named_buffers(true)) {
    const std::string& n = b.key();
    if (n.find("running_mean") != std::string::npos) b.value().zero_();
    else if (n.find("running_var") != std::string::npos) b.value().fill_(1.0);
    else if (n.find("num_batches_tracked") != std::string::npos) b.value().zero_();
  }
}
}  // namespace

void ImageClassifier::init_all(uint64_t seed) {
  torch::manual_seed(seed);
  init_module(*this, config_.initializer_range);
}

void ImageClassifier::init_head(uint64_t seed) {
  torch::manual_seed(seed);
  torch::NoGradGuard ng;
  for (auto& g : param_groups())
    if (g.name == "head")
      for (auto& [n, t] : g.params) {
        if (n.size() >= 4 && n.substr(n.size() - 4) == "bias") t.zero_();
        else t.normal_(0.0, config_.initializer_range);
      }
}


torch::Tensor ImageClassifier::dropout_linear(torch::nn::Linear& classifier, const torch::Tensor& f) {
  if (!classifier) return f;
  return classifier(kotsu::dropout(f, config_.classifier_dropout_prob, is_training()));
}

std::vector<ParamGroup> ImageClassifier::group_params(const std::string& stem,
                                                      const std::function<int64_t(const std::string&)>& layer_of) {
  std::vector<ParamGroup> groups{{"stem", {}}};
  for (int64_t i = 0; i < num_layers(); ++i) groups.push_back({"layer." + std::to_string(i), {}});
  groups.push_back({"head", {}});
  for (const auto& p : named_parameters(true)) {
    const std::string& n = p.key();
    if (n.rfind(stem, 0) == 0) {
      groups.front().params.emplace_back(n, p.value());
      continue;
    }
    const int64_t l = layer_of(n);
    if (l >= 0 && l < num_layers()) groups[1 + l].params.emplace_back(n, p.value());
    else groups.back().params.emplace_back(n, p.value());
  }
  return groups;
}

std::shared_ptr<ImageClassifier> make_image_classifier(const ImageConfig& config, int64_t num_labels) {
  if (config.model_type == "mobilenet_v2") return std::make_shared<MobileNetV2Classifier>(config, num_labels);
  if (config.model_type == "mobilenet_v1") return std::make_shared<MobileNetV1Classifier>(config, num_labels);
  if (config.model_type == "darknet") return std::make_shared<DarknetClassifier>(config, num_labels);
  if (config.model_type == "resnet") return std::make_shared<ResNetClassifier>(config, num_labels);
  if (config.model_type == "efficientnet_lite") return std::make_shared<EfficientNetLiteClassifier>(config, num_labels);
  throw Error("config.json", "model_type", "'" + config.model_type + "' is not an image architecture kotsu builds");
}

LoadReport load_image_weights(ImageClassifier& model, const std::map<std::string, torch::Tensor>& tensors,
                              const std::string& path, uint64_t seed, bool fresh_head) {
  LoadReport r;
  std::set<std::string> head_names, used;
  for (auto& g : model.param_groups())
    if (g.name == "head")
      for (auto& [n, t] : g.params) head_names.insert(n);
  torch::NoGradGuard ng;
  bool head_ok = !head_names.empty() && !fresh_head;
  for (auto& [name, dst] : model.state()) {
    const bool is_head = head_names.count(name) != 0;
    auto it = tensors.find(name);
    if (it == tensors.end()) {
      if (name.find("num_batches_tracked") != std::string::npos) continue;
      if (is_head) {
        head_ok = false;
        continue;
      }
      throw Error(path, name, "missing from the checkpoint");
    }
    used.insert(name);
    if (is_head && fresh_head) continue;
    if (it->second.sizes() != dst.sizes()) {
      if (is_head) {
        head_ok = false;
        continue;
      }
      throw Error(path, name, "shape mismatch: checkpoint has " + c10::str(it->second.sizes()) + ", model needs " +
                                  c10::str(dst.sizes()));
    }
    dst.copy_(it->second.to(dst.dtype()));
    ++r.loaded;
  }
  for (auto& [n, t] : tensors)
    if (!used.count(n)) r.unexpected.push_back(n);
  if (!head_names.empty() && !head_ok) {
    model.init_head(seed);
    r.head_initialised = true;
  }
  return r;
}

}  // namespace kotsu
