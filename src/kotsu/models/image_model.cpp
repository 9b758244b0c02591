#include "kotsu/models/image_model.hpp"

#include <torch/torch.h>

#include <filesystem>

#include "kotsu/core/error.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/io/model_dir.hpp"
#include "kotsu/io/json_file.hpp"
#include "kotsu/models/lora.hpp"
#include "kotsu/io/safetensors.hpp"
#include "kotsu/models/resnet.hpp"

namespace kotsu {

namespace fs = std::filesystem;

bool is_image_model_dir(const std::string& dir) {
  const fs::path cfg = fs::path(dir) / "config.json";
  if (!fs::is_regular_file(cfg)) return false;
  nlohmann::json j = read_json(cfg.string(), size_t(16) << 20);
  return j.is_object() && j.contains("model_type") && j["model_type"].is_string() &&
         is_image_model_type(j["model_type"].get<std::string>());
}

ImageModel load_image_model(const std::string& dir, const std::vector<std::string>& labels, uint64_t seed, bool random) {
  if (!fs::is_directory(dir)) throw Error(dir, "", "model directory not found");
  const std::string cfg_path = (fs::path(dir) / "config.json").string();
  if (!file_exists(cfg_path)) throw Error(dir, "config.json", "missing: not a Hugging Face model directory");
  ImageModel m;
  m.config = ImageConfig::load(cfg_path);
  const std::string pre = (fs::path(dir) / "preprocessor_config.json").string();
  if (file_exists(pre)) m.preprocess = ImagePreprocess::load(pre);
  else {
    m.preprocess.crop_height = m.preprocess.crop_width = m.config.image_size;
    m.preprocess.resize_shortest = static_cast<int64_t>(std::lround(m.config.image_size / 0.875));
  }
  if (static_cast<int64_t>(m.preprocess.mean.size()) != m.config.num_channels)
    throw Error(pre, "image_mean", "has " + std::to_string(m.preprocess.mean.size()) + " values for " +
                                       std::to_string(m.config.num_channels) + " channels");
  const bool fresh_head = !labels.empty() && labels != m.config.labels;
  if (!labels.empty()) m.config.labels = labels;
  if (m.config.labels.size() == 1) throw Error(cfg_path, "id2label", "a classifier needs at least two labels");
  m.model = make_image_classifier(m.config, static_cast<int64_t>(m.config.labels.size()));
  if (random) {
    m.model->init_all(seed);
    m.load_report.head_initialised = true;
    return m;
  }
  const std::string st = model_weights_path(dir);
  auto tensors = load_safetensors(st);
  if (m.config.model_type == "resnet" && has_torchvision_resnet_names(tensors))
    tensors = resnet_hf_names(tensors);  // torchvision / timm checkpoint
  m.load_report = load_image_weights(*m.model, tensors, st, seed, fresh_head);
  return m;
}

void save_image_model(const ImageModel& m, const std::string& dir) {
  make_dirs(dir);
  NamedTensors tensors;
  for (auto& [name, t] : merged_state(*m.model, m.model->state()))
    tensors.emplace_back(name, (t.is_floating_point() ? t.to(torch::kFloat32) : t).contiguous());
  save_safetensors((fs::path(dir) / "model.safetensors").string(), tensors, {{"format", "pt"}});
  write_atomic((fs::path(dir) / "config.json").string(), m.config.to_json().dump(2) + "\n");
  write_atomic((fs::path(dir) / "preprocessor_config.json").string(), m.preprocess.to_json().dump(2) + "\n");
}

ImportReport write_imported_image_model(const std::string& out, bool overwrite, const ImageConfig& config,
                                        const ImagePreprocess& preprocess, const NamedTensors& tensors,
                                        const std::string& source, const std::string& extra) {
  const fs::path tmp = begin_model_dir(out, overwrite);
  ImportReport r;
  r.architecture = config.model_type;
  r.tensors = tensors.size();
  for (auto& [n, t] : tensors) r.parameters += t.numel();
  r.extra = extra;
  save_safetensors((tmp / "model.safetensors").string(), tensors, {{"format", "pt"}, {"source", source}});
  write_atomic((tmp / "config.json").string(), config.to_json().dump(2) + "\n");
  write_atomic((tmp / "preprocessor_config.json").string(), preprocess.to_json().dump(2) + "\n");
  finish_model_dir(tmp.string(), out);
  return r;
}

}  // namespace kotsu
