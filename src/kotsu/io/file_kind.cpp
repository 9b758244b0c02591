#include "kotsu/io/file_kind.hpp"

#include <cstdint>
#include <cstring>
#include <fstream>

#include "kotsu/core/error.hpp"

namespace kotsu {

FileKind sniff_file_kind(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path, "", "cannot open");
  char b[64] = {};
  in.read(b, sizeof b);
  const size_t n = static_cast<size_t>(in.gcount());
  auto starts = [&](const char* m, size_t len, size_t at = 0) { return n >= at + len && std::memcmp(b + at, m, len) == 0; };
  if (starts("GGUF", 4)) return FileKind::Gguf;
  if (starts("TFL3", 4, 4)) return FileKind::Tflite;
  if (starts("PK\x03\x04", 4)) return FileKind::PytorchZip;
  if (n >= 2 && static_cast<unsigned char>(b[0]) == 0x80 && b[1] >= 2 && b[1] <= 5) return FileKind::PytorchLegacy;
  if (n >= 9) {  // safetensors: little-endian header length, then '{'
    uint64_t len = 0;
    std::memcpy(&len, b, 8);
    if (len >= 2 && len < (uint64_t(100) << 20) && b[8] == '{') return FileKind::Safetensors;
  }
  for (size_t i = 0; i < n; ++i) {
    if (b[i] == '{') return FileKind::Json;
    if (b[i] != ' ' && b[i] != '\n' && b[i] != '\r' && b[i] != '\t') break;
  }
  if (path.size() > 5 && path.compare(path.size() - 5, 5, ".onnx") == 0) return FileKind::Onnx;
  return FileKind::Unknown;
}

std::string describe_file_kind(FileKind k) {
  switch (k) {
    case FileKind::Safetensors: return "a safetensors file";
    case FileKind::Gguf: return "a GGUF file";
    case FileKind::Tflite: return "a TFLite model";
    case FileKind::Json: return "a JSON file";
    case FileKind::PytorchZip: return "a PyTorch checkpoint (torch.save's zip of pickles)";
    case FileKind::PytorchLegacy: return "a PyTorch checkpoint in the legacy pickle format";
    case FileKind::Onnx: return "an ONNX model";
    case FileKind::Unknown: break;
  }
  return "a file of unknown kind";
}

}  // namespace kotsu
