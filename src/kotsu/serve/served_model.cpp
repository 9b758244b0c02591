#include "kotsu/serve/served_model.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>

#include "kotsu/core/error.hpp"
#include "kotsu/train/evaluate.hpp"
#include "kotsu/train/evaluate_image.hpp"

namespace kotsu {

namespace fs = std::filesystem;

namespace {
bool is_number(const std::string& s) {
  return !s.empty() && s.size() <= 18 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}
}  // namespace

ServedVersion resolve_version(const std::string& root) {
  std::error_code ec;
  if (fs::is_regular_file(fs::path(root) / "config.json", ec)) return {root, "1"};
  if (!fs::is_directory(root, ec)) throw Error(root, "", "no such model directory");
  long long best = -1;
  std::string best_dir;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const std::string name = e.path().filename().string();
    if (!e.is_directory(ec) || !is_number(name) || !fs::is_regular_file(e.path() / "config.json", ec)) continue;
    const long long v = std::stoll(name);
    if (v > best) best = v, best_dir = e.path().string();
  }
  if (best < 0) throw Error(root, "config.json", "not a model directory, and no numbered version folder (1/, 2/, ...) holds one");
  return {best_dir, std::to_string(best)};
}

ServedModel::ServedModel(const ServedVersion& v, const std::string& device) : version_(v), device_(device) {
  if (is_image_model_dir(v.dir)) {
    kind_ = "image";
    image_ = std::make_unique<ImageModel>(load_image_model(v.dir));
    labels_ = image_->config.labels;
    image_->model->to(torch::Device(device));
    image_->model->eval();
  } else {
    kind_ = "text";
    text_ = std::make_unique<TextModel>(load_text_model(v.dir));
    labels_ = text_->config.labels;
    max_len_ = run_max_len(v.dir);
    if (run_masks_pii(v.dir)) masker_ = std::make_unique<PiiMasker>();
    text_->model->to(torch::Device(device));
    text_->model->eval();
  }
  if (labels_.empty()) throw Error(v.dir, "id2label", "the model has no labels: train it first (kotsu train)");
}

ServedModel::~ServedModel() = default;

Image ServedModel::decode(std::string_view bytes, const std::string& name) const {
  return decode_image_bytes(bytes, name, image_ ? static_cast<int>(image_->preprocess.decode_side()) : 0);
}

std::vector<ServeOutput> ServedModel::classify(std::vector<ServeInput>& inputs) {
  std::vector<ServeOutput> out(inputs.size());
  if (inputs.empty()) return out;
  const auto n = static_cast<int64_t>(inputs.size());
  torch::Tensor probs;
  if (image_) {
    std::vector<Image> images;
    images.reserve(inputs.size());
    for (auto& x : inputs) images.push_back(std::move(x.image));
    probs = predict_images(*image_, images, n, device_).to(torch::kCPU).contiguous();
  } else {
    std::vector<std::string> texts;
    texts.reserve(inputs.size());
    for (auto& x : inputs) texts.push_back(masker_ ? masker_->mask(x.text) : std::move(x.text));
    auto preds = predict_texts(*text_, texts, max_len_, n, device_);
    for (size_t i = 0; i < preds.size(); ++i) out[i].probs = std::move(preds[i].probs);
  }
  for (size_t i = 0; i < out.size(); ++i) {
    if (probs.defined()) {
      const float* p = probs.data_ptr<float>() + static_cast<int64_t>(i) * probs.size(1);
      out[i].probs.assign(p, p + probs.size(1));
    }
    out[i].label = std::max_element(out[i].probs.begin(), out[i].probs.end()) - out[i].probs.begin();
  }
  return out;
}

}  // namespace kotsu
