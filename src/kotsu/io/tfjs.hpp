// kotsu/io/tfjs: TensorFlow.js models: model.json (graph or layers model topology + weightsManifest) and
// its binary weight shards. Weights of a manifest group are laid end to end across the group's shards;
// float32, int32 and bool are stored raw, and float weights may be quantized to uint8/uint16
// (value = q * scale + min) or float16, which are expanded to float32 here. String weights are skipped.
// Written by hand: no Debian package reads TFJS files.
// requires: nothing of the files; every size is checked against the manifest and the shard bytes before
//           it is used, and a missing or short shard is refused with kotsu::Error naming it and the weight.
#pragma once
#include <torch/types.h>

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace kotsu {

struct TfjsWeight {
  std::string name;
  std::vector<int64_t> shape;
  std::string dtype;         // as stored in the manifest: float32, int32, bool, string
  std::string quantization;  // "", "uint8", "uint16" or "float16"
  torch::Tensor value;       // float32 (dequantized), int32 or bool; undefined for strings
};

struct TfjsModel {
  std::string path;      // model.json
  std::string format;    // "graph-model", "layers-model" or "" when the file does not say
  nlohmann::json topology;
  std::vector<TfjsWeight> weights;
  const TfjsWeight* find(const std::string& name) const;
};

TfjsModel read_tfjs(const std::string& model_json);

}  // namespace kotsu
