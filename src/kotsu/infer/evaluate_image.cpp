#include "kotsu/infer/evaluate_image.hpp"

#include <torch/torch.h>

#include "kotsu/core/error.hpp"
#include "kotsu/core/runtime.hpp"
#include "kotsu/data/image_dataset.hpp"
#include "kotsu/infer/evaluate.hpp"
#include "kotsu/infer/predict.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/models/quantize.hpp"
#include "kotsu/vision/transforms.hpp"

namespace kotsu {

namespace {
// fn over the eval-transformed pictures in batches, in eval mode without gradients; float32 on the CPU.
template <class F>
torch::Tensor run_images(ImageModel& m, const std::vector<Image>& images, int64_t batch_size, const torch::Device& dev, F fn) {
  m.model->to(dev);
  m.model->eval();
  torch::NoGradGuard ng;
  std::vector<torch::Tensor> out;
  for (size_t s = 0; s < images.size(); s += static_cast<size_t>(batch_size)) {
    std::vector<torch::Tensor> xs;
    for (size_t i = s; i < std::min(images.size(), s + static_cast<size_t>(batch_size)); ++i)
      xs.push_back(eval_transform(images[i], m.preprocess));
    out.push_back(fn(torch::stack(xs).to(dev)).to(torch::kCPU).to(torch::kFloat));
  }
  return torch::cat(out);
}
torch::Tensor logits_of(ImageModel& m, const std::vector<Image>& images, int64_t batch_size, const torch::Device& dev) {
  return run_images(m, images, batch_size, dev, [&](const torch::Tensor& x) { return m.model->logits(x); });
}
}  // namespace

torch::Tensor image_features(ImageModel& m, const std::vector<Image>& images, int64_t batch_size, const std::string& device) {
  return run_images(m, images, batch_size, torch::Device(device), [&](const torch::Tensor& x) { return m.model->features(x); });
}

torch::Tensor predict_images(ImageModel& m, const std::vector<Image>& images, int64_t batch_size, const std::string& device) {
  return torch::softmax(logits_of(m, images, batch_size, torch::Device(device)), 1);
}

EvalResult evaluate_image_run(const std::string& run_dir, const std::string& data, int64_t batch_size,
                              const std::string& device, bool skip_bad, std::vector<std::string>* names,
                              std::vector<std::pair<std::string, std::string>>* skipped, const std::vector<int64_t>& rows) {
  ImageModel m = load_image_model(run_dir);
  if (m.config.labels.empty()) throw Error(run_dir, "id2label", "the model has no labels: train it first (kotsu train)");
  ImageDataset d = load_image_dataset(data);
  if (!rows.empty()) d = select_rows(d, rows);
  std::vector<Image> images;
  auto bad = check_images(d, skip_bad, runtime_threads(), &images, static_cast<int>(m.preprocess.decode_side()));
  if (skipped) *skipped = std::move(bad);
  auto y = remap_targets(d, m.config.labels);
  const bool int8 = int8_for_inference(*m.model, run_dir, torch::Device(device));  // an export --int8 directory, as served
  EvalResult r = make_eval_result(m.config.labels, y,
                                  score_logits(logits_of(m, images, batch_size, torch::Device(device)), y, run_decision_rule(run_dir, m.config.labels)),
                                  run_dir, data);
  if (int8) r.report["int8"] = true;
  if (names)
    for (size_t i = 0; i < d.size(); ++i) names->push_back(d.name(i));
  return r;
}

void write_image_predictions(const EvalResult& r, const std::vector<std::string>& names, const std::string& path) {
  std::string out;
  for (size_t i = 0; i < r.predicted.size(); ++i) {
    nlohmann::ordered_json j;
    j["image"] = names.at(i);
    add_prediction_fields(r, i, j);
    out += j.dump() + "\n";
  }
  write_atomic(path, out);
}

}  // namespace kotsu
