// kotsu/io/file_kind: what kind of model file a path holds, from its first bytes (never its name), so that
// a command handed the wrong file says what it is instead of failing inside the wrong reader.
#pragma once
#include <string>

namespace kotsu {

enum class FileKind {
  Safetensors,     // 8-byte header length, then a JSON object
  Gguf,            // "GGUF"
  Tflite,          // a FlatBuffer with the "TFL3" identifier
  Json,            // starts with '{' after optional whitespace (TF.js model.json, tokenizer.json, config.json)
  PytorchZip,      // torch.save's zip format (pytorch_model.bin since PyTorch 1.6)
  PytorchLegacy,   // torch.save's legacy pickle stream (a pickle protocol header)
  Onnx,            // not recognisable by magic; reported as Unknown unless the name ends in .onnx
  Unknown,
};

// Reads at most the first 64 bytes. kotsu::Error naming the file when it cannot be opened.
FileKind sniff_file_kind(const std::string& path);

// "a safetensors file", "a PyTorch checkpoint (torch.save zip of pickles)", ...
std::string describe_file_kind(FileKind k);

}  // namespace kotsu
