#include "kotsu/train/evaluate_image.hpp"

#include <torch/torch.h>

#include "kotsu/core/error.hpp"
#include "kotsu/core/runtime.hpp"
#include "kotsu/data/image_dataset.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/train/predict.hpp"
#include "kotsu/vision/transforms.hpp"

namespace kotsu {

namespace {
torch::Tensor logits_of(ImageModel& m, const std::vector<Image>& images, int64_t batch_size, const torch::Device& dev) {
  m.model->to(dev);
  m.model->eval();
  torch::NoGradGuard ng;
  std::vector<torch::Tensor> out;
  for (size_t s = 0; s < images.size(); s += static_cast<size_t>(batch_size)) {
    std::vector<torch::Tensor> xs;
    for (size_t i = s; i < std::min(images.size(), s + static_cast<size_t>(batch_size)); ++i)
      xs.push_back(eval_transform(images[i], m.preprocess));
    out.push_back(m.model->logits(torch::stack(xs).to(dev)).to(torch::kCPU).to(torch::kFloat));
  }
  return torch::cat(out);
}
}  // namespace

torch::Tensor predict_images(ImageModel& m, const std::vector<Image>& images, int64_t batch_size, const std::string& device) {
  return torch::softmax(logits_of(m, images, batch_size, torch::Device(device)), 1);
}

EvalResult evaluate_image_run(const std::string& run_dir, const std::string& data, int64_t batch_size,
                              const std::string& device, bool skip_bad, std::vector<std::string>* names) {
  ImageModel m = load_image_model(run_dir);
  if (m.config.labels.empty()) throw Error(run_dir, "id2label", "the model has no labels: train it first (kotsu train)");
  ImageDataset d = load_image_dataset(data);
  std::vector<Image> images;
  check_images(d, skip_bad, runtime_threads(), &images, static_cast<int>(m.preprocess.decode_side()));
  auto y = remap_targets(d, m.config.labels);
  EvalResult r = make_eval_result(m.config.labels, y, score_logits(logits_of(m, images, batch_size, torch::Device(device)), y),
                                  run_dir, data);
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
