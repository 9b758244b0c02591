// kotsu/io/gguf: reads the key/value metadata and tensor directory of a GGUF file (llama.cpp's format,
// versions 2 and 3). Written by hand: no Debian package ships a GGUF reader.
// requires: nothing of the file; every length and count is checked against the bytes left before it
//           is used, so a truncated or hostile file is refused with kotsu::Error naming the key.
// ensures:  metadata values are returned as JSON (numbers, bools, strings, arrays of them).
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace kotsu {

struct GgufTensorInfo {
  std::string name;
  std::vector<uint64_t> dims;
  uint32_t type = 0;
  uint64_t offset = 0;
};

struct GgufFile {
  uint32_t version = 0;
  std::map<std::string, nlohmann::json> kv;
  std::vector<GgufTensorInfo> tensors;

  const nlohmann::json& at(const std::string& path, const std::string& key) const;
  bool has(const std::string& key) const { return kv.count(key) != 0; }
};

GgufFile read_gguf(const std::string& path);

}  // namespace kotsu
