// kotsu/io/safetensors: the Hugging Face safetensors format (8-byte little-endian header length, JSON
// header {name: {dtype, shape, data_offsets}, "__metadata__": {...}}, then the raw little-endian data).
// requires: nothing of the file; a truncated or hostile file is refused with kotsu::Error before any
//           allocation its header would drive (header over 100 MB, offsets past the end, overlapping
//           ranges, shape/size mismatch, unknown dtype, bad JSON).
// ensures:  save_safetensors writes atomically, tensors in name order, header padded to 8 bytes.
#pragma once
#include <torch/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace kotsu {

class MappedFile;

struct TensorInfo {
  std::string name;
  std::string dtype;            // "F32", "F16", "BF16", "I64", ...
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range inside the data section
};

class SafetensorsReader {
 public:
  explicit SafetensorsReader(const std::string& path);
  ~SafetensorsReader();
  const std::vector<TensorInfo>& tensors() const { return infos_; }
  const TensorInfo* find(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // An owned copy of the tensor in its stored dtype.
  torch::Tensor tensor(const std::string& name) const;
  torch::Tensor tensor(const TensorInfo& info) const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::unique_ptr<MappedFile> file_;
  const uint8_t* data_ = nullptr;  // start of the data section
  std::vector<TensorInfo> infos_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// Every tensor by name. An int8 tensor "<w>" stored with a float "<w>_scale" that broadcasts to it (the
// int8 export, models/quantize) is returned as the float tensor <w> * <w>_scale, the scale dropped.
std::map<std::string, torch::Tensor> load_safetensors(const std::string& path);
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Size in bytes of one element of a safetensors dtype, 0 when unknown.
size_t safetensors_dtype_size(const std::string& dtype);

}  // namespace kotsu
