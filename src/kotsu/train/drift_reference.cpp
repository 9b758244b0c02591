#include "kotsu/train/drift_reference.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "kotsu/core/error.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/io/json_file.hpp"
#include "kotsu/models/image_model.hpp"
#include "kotsu/text/pii.hpp"
#include "kotsu/text/utf8.hpp"
#include "kotsu/train/evaluate.hpp"
#include "kotsu/train/options.hpp"

namespace kotsu {

namespace fs = std::filesystem;

DriftSample run_reference_sample(const std::string& run_dir, const std::string& reference_file, int64_t batch_size,
                                 const std::string& device, std::string* source) {
  if (is_image_model_dir(run_dir))
    throw Error(run_dir, "", "kotsu drift measures text classifiers so far (picture runs are not supported yet)");
  TextModel m = load_text_model(run_dir);
  TextDataset d;
  std::string used;
  if (!reference_file.empty()) {
    TextColumns c = run_columns(run_dir);
    c.label.clear();  // any file with the text column will do: the labels are predicted
    d = load_text_dataset(reference_file, c);
    used = reference_file;
  } else {
    const std::string run_path = (fs::path(run_dir) / "run.json").string();
    if (!file_exists(run_path)) throw Error(run_dir, "run.json", "not a training run: name the reference texts with --reference FILE");
    const nlohmann::json rj = read_json(run_path);
    if (!rj.contains("options")) throw Error(run_path, "options", "missing");
    TrainOptions o;
    o.merge_json(rj["options"], run_path);
    if (o.validation && !o.val_data.empty()) {
      d = load_text_dataset(o.val_data, o.columns);
      used = o.val_data;
    } else {
      d = load_text_dataset(o.data, o.columns);
      if (!o.rows.empty()) d = subset(d, o.rows);
      if (o.validation) {
        std::vector<size_t> tr, va;
        stratified_split(label_ids(d, m.config.labels), o.val_fraction, o.seed, tr, va);
        d = subset(d, std::vector<int64_t>(va.begin(), va.end()));
        used = fmt::format("{} (the run's validation split: {} rows)", o.data, d.size());
      } else {
        used = o.data + " (the training data: the run had no validation)";
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
  for (const auto& p : predict_texts(m, d.texts, run_max_len(run_dir), batch_size, device)) {
    const auto best = std::max_element(p.probs.begin(), p.probs.end());
    s.labels.push_back(p.label);
    s.confidence.push_back(*best);
  }
  if (source) *source = used;
  return s;
}

}  // namespace kotsu
