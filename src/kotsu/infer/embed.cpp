#include "kotsu/infer/embed.hpp"

#include <torch/torch.h>

#include <filesystem>

#include "kotsu/core/error.hpp"
#include "kotsu/core/runtime.hpp"
#include "kotsu/data/image_dataset.hpp"
#include "kotsu/infer/evaluate.hpp"
#include "kotsu/infer/evaluate_image.hpp"
#include "kotsu/infer/predict.hpp"
#include "kotsu/io/json_file.hpp"
#include "kotsu/models/image_model.hpp"
#include "kotsu/models/text_model.hpp"

namespace kotsu {

namespace fs = std::filesystem;

namespace {

// A model directory without id2label (a base model) still gives features: its head, sized for two
// placeholder labels, is never used.
std::vector<std::string> placeholder_labels(const std::string& dir) {
  const nlohmann::json j = read_json((fs::path(dir) / "config.json").string(), size_t(16) << 20);
  if (j.is_object() && j.contains("id2label") && j["id2label"].is_object() && j["id2label"].size() >= 2) return {};
  return {"LABEL_0", "LABEL_1"};
}

Embedded embed_images(const std::string& dir, const std::string& data, int64_t batch_size, const torch::Device& dev,
                      bool skip_bad, int64_t image_size) {
  ImageModel m = load_image_model(dir, placeholder_labels(dir));
  if (image_size > 0) m.preprocess.set_size(image_size);
  ImageDataset d = load_image_dataset(data);
  std::vector<Image> images;
  Embedded e;
  e.skipped = check_images(d, skip_bad, runtime_threads(), &images, static_cast<int>(m.preprocess.decode_side()));
  e.features = image_features(m, images, batch_size, dev.str());
  for (size_t i = 0; i < d.size(); ++i) {
    e.names.push_back(d.name(i));
    e.labels.push_back(d.classes.at(static_cast<size_t>(d.targets[i])));
  }
  return e;
}

Embedded embed_texts(const std::string& dir, const std::string& data, const TextColumns& cols, int64_t batch_size,
                     const torch::Device& dev) {
  TextModel m = load_text_model(dir, placeholder_labels(dir));
  TextColumns c = cols;
  c.label.clear();  // features need no label column
  TextDataset d = load_text_dataset(data, c);
  if (d.size() == 0) throw Error(data, "", "no texts");
  const size_t max_len = static_cast<size_t>(std::min<int64_t>(run_max_len(dir), m.model->max_positions()));
  EncodedTexts enc = encode_texts(*m.tokenizer, d, max_len);
  m.model->to(dev);
  Embedded e;
  e.features = compute_features(*m.model, enc, batch_size, dev).to(torch::kCPU).to(torch::kFloat);
  for (size_t i = 0; i < d.size(); ++i) {
    e.names.push_back("line " + std::to_string(d.lines[i]));
    e.labels.emplace_back();
  }
  return e;
}

}  // namespace

Embedded embed_data(const std::string& model_dir, const std::string& data, const TextColumns& cols, int64_t batch_size,
                    const std::string& device, bool skip_bad, int64_t image_size) {
  if (batch_size < 1) throw Error("options", "batch_size", "must be >= 1");
  if (!fs::is_directory(model_dir)) throw Error(model_dir, "", "model directory not found");
  const torch::Device dev(device);
  if (is_image_model_dir(model_dir)) return embed_images(model_dir, data, batch_size, dev, skip_bad, image_size);
  if (image_size > 0) throw Error("options", "image_size", "applies to picture models; " + model_dir + " is a text model");
  return embed_texts(model_dir, data, cols, batch_size, dev);
}

}  // namespace kotsu
