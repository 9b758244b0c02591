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
  uint32_t type = 0;     // ggml type (F32 0, F16 1, Q8_0 8, ...); always one ggml knows
  uint64_t offset = 0;   // from the start of the tensor data, as llama.cpp lays it out (checked)
  uint64_t bytes = 0;    // its size in the file
};

struct GgufFile {
  uint32_t version = 0;
  std::map<std::string, nlohmann::json> kv;
  std::vector<GgufTensorInfo> tensors;
  uint64_t data_offset = 0;  // where the tensor data starts in the file (aligned to general.alignment)

  const nlohmann::json& at(const std::string& path, const std::string& key) const;
  bool has(const std::string& key) const { return kv.count(key) != 0; }
};

// Checks as strictly as llama.cpp's loader: known value and tensor types, no repeated keys or tensor
// names, 1 to 4 dimensions without overflow, a first dimension that fills whole blocks, offsets in file
// order at the alignment, and tensor data inside the file.
GgufFile read_gguf(const std::string& path);

// ggml's name of a tensor type ("F32", "Q8_0", ...), or nullptr for a type ggml does not know.
const char* gguf_type_name(uint32_t type);

}  // namespace kotsu
