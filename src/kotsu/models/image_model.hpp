// kotsu/models/image_model: an image classifier together with its config and preprocessing, loaded from
// and saved to a Hugging Face model directory (config.json + model.safetensors + preprocessor_config.json).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "kotsu/io/image_config.hpp"
#include "kotsu/io/model_dir.hpp"
#include "kotsu/io/safetensors.hpp"
#include "kotsu/models/image_classifier.hpp"

namespace kotsu {

struct ImageModel {
  ImageConfig config;
  ImagePreprocess preprocess;
  std::shared_ptr<ImageClassifier> model;
  LoadReport load_report;
};

// True when `dir`/config.json names an image architecture (what the CLI checks to pick the pipeline).
bool is_image_model_dir(const std::string& dir);

// Loads `dir`. With `labels` non-empty the head is sized for them (re-initialised when they differ from
// the checkpoint's); with `labels` empty the checkpoint's own id2label is used (a backbone without
// labels loads with no head). random = true keeps only the architecture (training from scratch).
ImageModel load_image_model(const std::string& dir, const std::vector<std::string>& labels = {}, uint64_t seed = 42,
                            bool random = false);
// Writes config.json, model.safetensors and preprocessor_config.json atomically.
void save_image_model(const ImageModel& m, const std::string& dir);
// What an importer converted (config, preprocessing, tensors under kotsu's names) written as a whole model
// directory at `out` (model_dir: complete or not at all); `source` goes into the safetensors metadata.
ImportReport write_imported_image_model(const std::string& out, bool overwrite, const ImageConfig& config,
                                        const ImagePreprocess& preprocess, const NamedTensors& tensors,
                                        const std::string& source, const std::string& extra);

}  // namespace kotsu
