// kotsu/models/text_model: a text classifier together with its config and tokenizer, loaded from and
// saved to a Hugging Face model directory (config.json + model.safetensors + vocab.txt/tokenizer.json).
// A run directory written by `kotsu train` is such a directory, so it loads in Hugging Face unchanged.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "kotsu/io/hf_config.hpp"
#include "kotsu/models/text_classifier.hpp"
#include "kotsu/text/tokenizer.hpp"

namespace kotsu {

struct TextModel {
  EncoderConfig config;
  std::shared_ptr<TextClassifier> model;
  std::shared_ptr<Tokenizer> tokenizer;
  LoadReport load_report;
  std::vector<std::string> labels() const { return config.labels; }
};

enum class InitMode { Pretrained, Random };

// Loads `dir`. With `labels` non-empty the head is sized for them (and re-initialised when the
// checkpoint's head differs); with `labels` empty the checkpoint's own id2label is used. `pooling` "cls" or
// "mean" overrides config.json's (EncoderConfig::pooling; BERT-family encoders only); "" keeps it, and a
// checkpoint without kotsu_pooling whose sentence-transformers modules.json declares mean pooling
// (all-MiniLM-L6-v2) pools by the mean: the embedding it was trained to give.
TextModel load_text_model(const std::string& dir, const std::vector<std::string>& labels = {},
                          uint64_t seed = 42, InitMode init = InitMode::Pretrained, const std::string& pooling = "");
// Writes config.json (with id2label/label2id), model.safetensors and the tokenizer files atomically.
void save_text_model(const TextModel& m, const std::string& dir);

}  // namespace kotsu
