// Test helper: small random models saved as model directories, for tests that train or evaluate quickly.
#pragma once
#include <string>

#include "kotsu/io/hf_config.hpp"
#include "kotsu/models/image_model.hpp"
#include "test_util.hpp"

namespace kotsu::test {

// A BERT-family encoder config small enough to build and train in milliseconds: 2 layers, feed-forward
// twice the hidden size.
inline EncoderConfig tiny_encoder_config(int64_t vocab, int64_t hidden, int64_t heads, int64_t max_positions) {
  EncoderConfig c;
  c.vocab_size = vocab;
  c.hidden_size = hidden;
  c.num_hidden_layers = 2;
  c.num_attention_heads = heads;
  c.intermediate_size = 2 * hidden;
  c.max_position_embeddings = max_positions;
  return c;
}

// A small random MobileNet V1 (width 0.25, 32x32 input; pictures resized to `resize` first) saved as a
// model directory without a head.
inline std::string tiny_mobilenet(const std::string& tag, int resize = 32, uint64_t seed = 3) {
  ImageModel m;
  m.config.model_type = "mobilenet_v1";
  m.config.depth_multiplier = 0.25;
  m.config.image_size = 32;
  m.preprocess.resize_shortest = resize;
  m.preprocess.crop_height = m.preprocess.crop_width = 32;
  m.model = make_image_classifier(m.config, 0);
  m.model->init_all(seed);
  const std::string dir = temp_dir(tag) + "/base";
  save_image_model(m, dir);
  return dir;
}

}  // namespace kotsu::test
