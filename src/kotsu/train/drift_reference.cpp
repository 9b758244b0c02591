#include "kotsu/train/drift_reference.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "kotsu/core/error.hpp"
#include "kotsu/core/runtime.hpp"
#include "kotsu/data/image_dataset.hpp"
#include "kotsu/infer/evaluate.hpp"
#include "kotsu/infer/evaluate_image.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/io/json_file.hpp"
#include "kotsu/models/image_model.hpp"
#include "kotsu/text/pii.hpp"
#include "kotsu/text/utf8.hpp"
#include "kotsu/train/options.hpp"

namespace kotsu {

namespace fs = std::filesystem;

namespace {

TrainOptions run_options(const std::string& run_dir) {
  const std::string run_path = (fs::path(run_dir) / "run.json").string();
  if (!file_exists(run_path)) throw Error(run_dir, "run.json", "not a training run: name the reference data with --reference FILE");
  const nlohmann::json rj = read_json(run_path);
  if (!rj.contains("options")) throw Error(run_path, "options", "missing");
  TrainOptions o;
  o.merge_json(rj["options"], run_path);
  return o;
}

// A picture run: its predictions on its validation pictures (the same split image_task makes), decoded as
// the server decodes them (at the model's decode side); length = decoded pixels, as the server logs.
DriftSample image_reference_sample(const std::string& run_dir, const std::string& reference_file, int64_t batch_size,
                                   const std::string& device, std::string* source) {
  ImageModel m = load_image_model(run_dir);
  if (m.config.labels.empty()) throw Error(run_dir, "id2label", "the model has no labels: train it first (kotsu train)");
  const int side = static_cast<int>(m.preprocess.decode_side());
  ImageDataset d;
  std::vector<Image> images;
  std::string used;
  if (!reference_file.empty()) {
    d = load_image_dataset(reference_file);
    check_images(d, true, runtime_threads(), &images, side);
    used = reference_file;
  } else {
    const TrainOptions o = run_options(run_dir);
    d = load_image_dataset(o.validation && !o.val_data.empty() ? o.val_data : o.data);
    check_images(d, true, runtime_threads(), &images, side);
    if (o.validation && !o.val_data.empty()) {
      used = o.val_data;
    } else if (o.holds_out()) {
      std::vector<size_t> tr, va;
      stratified_split(remap_targets(d, m.config.labels), o.holdout_fraction(), o.seed, tr, va);
      std::vector<Image> kept;
      for (size_t i : va) kept.push_back(std::move(images[i]));
      images = std::move(kept);
      used = fmt::format("{} (the run's validation split: {} pictures)", o.data, images.size());
    } else {
      used = o.data + (o.validation ? " (the training data: the run held nothing out)" : " (the training data: the run had no validation)");
    }
  }
  if (images.empty()) throw Error(used, "", "no readable pictures to compare against");
  DriftSample s;
  for (const Image& im : images) s.length.push_back(static_cast<double>(im.width) * im.height);
  const torch::Tensor probs = predict_images(m, images, batch_size, device).to(torch::kCPU).contiguous();
  const auto [conf, label] = probs.max(1);
  for (int64_t i = 0; i < probs.size(0); ++i) {
    s.labels.push_back(m.config.labels[static_cast<size_t>(label[i].item<int64_t>())]);
    s.confidence.push_back(conf[i].item<double>());
  }
  if (source) *source = used;
  return s;
}

}  // namespace

DriftSample run_reference_sample(const std::string& run_dir, const std::string& reference_file, int64_t batch_size,
                                 const std::string& device, std::string* source) {
  if (is_image_model_dir(run_dir)) return image_reference_sample(run_dir, reference_file, batch_size, device, source);
  TextModel m = load_text_model(run_dir);
  TextDataset d;
  std::string used;
  if (!reference_file.empty()) {
    TextColumns c = run_columns(run_dir);
    c.label.clear();  // any file with the text column will do: the labels are predicted
    d = load_text_dataset(reference_file, c);
    used = reference_file;
  } else {
    const TrainOptions o = run_options(run_dir);
    if (o.validation && !o.val_data.empty()) {
      d = load_text_dataset(o.val_data, o.columns);
      used = o.val_data;
    } else {
      d = load_text_dataset(o.data, o.columns);
      if (!o.rows.empty()) d = subset(d, o.rows);
      if (o.holds_out()) {
        std::vector<size_t> tr, va;
        stratified_split(label_ids(d, m.config.labels), o.holdout_fraction(), o.seed, tr, va);
        d = subset(d, std::vector<int64_t>(va.begin(), va.end()));
        used = fmt::format("{} (the run's validation split: {} rows)", o.data, d.size());
      } else {
        used = o.data + (o.validation ? " (the training data: the run held nothing out)" : " (the training data: the run had no validation)");
      }
    }
  }
  if (d.size() == 0) throw Error(used, "", "no texts to compare against");
  DriftSample s;
  for (const auto& t : d.texts)
    s.length.push_back(static_cast<double>(utf8_length(t)));
  if (run_masks_pii(run_dir)) {
    PiiMasker masker;
    for (auto& t : d.texts) t = masker.mask(t);
  }
  for (const auto& p : predict_texts(m, d.texts, run_max_len(run_dir), batch_size, device, run_decision_rule(run_dir, m.config.labels))) {
    s.labels.push_back(p.label);  // as serve labels them (its log is what this is compared with)
    s.confidence.push_back(p.probs[static_cast<size_t>(std::find(m.config.labels.begin(), m.config.labels.end(), p.label) - m.config.labels.begin())]);
  }
  if (source) *source = used;
  return s;
}

}  // namespace kotsu
