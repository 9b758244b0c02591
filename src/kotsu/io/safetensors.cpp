#include "kotsu/io/safetensors.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "kotsu/core/error.hpp"
#include "kotsu/io/file.hpp"

namespace kotsu {

namespace {
constexpr uint64_t kMaxHeader = 100'000'000;  // the reference implementation's bound
constexpr size_t kMaxDims = 16;

struct DTypeInfo {
  const char* name;
  size_t size;
  torch::ScalarType scalar;
};
constexpr DTypeInfo kDTypes[] = {
    {"BOOL", 1, torch::kBool},     {"U8", 1, torch::kUInt8},     {"I8", 1, torch::kInt8},
    {"I16", 2, torch::kInt16},     {"F16", 2, torch::kFloat16},  {"BF16", 2, torch::kBFloat16},
    {"I32", 4, torch::kInt32},     {"F32", 4, torch::kFloat32},  {"F64", 8, torch::kFloat64},
    {"I64", 8, torch::kInt64},
};
// Dtypes torch 1.13 has no type for: still valid files, refused only when such a tensor is read.
constexpr const char* kUnsupported[] = {"U16", "U32", "U64", "F8_E4M3", "F8_E5M2"};

const DTypeInfo* dtype_info(const std::string& name) {
  for (const auto& d : kDTypes)
    if (name == d.name) return &d;
  return nullptr;
}

const char* dtype_name(torch::ScalarType t) {
  for (const auto& d : kDTypes)
    if (d.scalar == t) return d.name;
  return nullptr;
}
}  // namespace

size_t safetensors_dtype_size(const std::string& dtype) {
  if (auto* d = dtype_info(dtype)) return d->size;
  if (dtype == "U16") return 2;
  if (dtype == "U32") return 4;
  if (dtype == "U64") return 8;
  if (dtype == "F8_E4M3" || dtype == "F8_E5M2") return 1;
  return 0;
}

SafetensorsReader::SafetensorsReader(const std::string& path) : path_(path) {
  file_ = std::make_unique<MappedFile>(path);
  const size_t size = file_->size();
  if (size < 8) throw Error(path, "header", "file is " + std::to_string(size) + " bytes, too short for a safetensors header");
  uint64_t n = 0;
  std::memcpy(&n, file_->data(), 8);  // little-endian host
  if (n > kMaxHeader) throw Error(path, "header", "header length " + std::to_string(n) + " exceeds the 100 MB limit");
  if (n > size - 8) throw Error(path, "header", "header length " + std::to_string(n) + " runs past the end of the " + std::to_string(size) + "-byte file (truncated?)");
  const char* hdr = reinterpret_cast<const char*>(file_->data() + 8);
  if (n < 2 || hdr[0] != '{') throw Error(path, "header", "header is not a JSON object");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(hdr, hdr + n);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path, "header", std::string("invalid JSON: ") + e.what());
  }
  if (!j.is_object()) throw Error(path, "header", "header is not a JSON object");
  data_ = file_->data() + 8 + n;
  const uint64_t data_size = size - 8 - n;

  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const auto& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) throw Error(path, "__metadata__", "must be an object of strings");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) throw Error(path, "__metadata__." + m.key(), "must be a string");
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!v.is_object()) throw Error(path, name, "tensor entry is not an object");
    TensorInfo info;
    info.name = name;
    auto dt = v.find("dtype");
    if (dt == v.end() || !dt->is_string()) throw Error(path, name + ".dtype", "missing or not a string");
    info.dtype = dt->get<std::string>();
    const size_t esize = safetensors_dtype_size(info.dtype);
    if (esize == 0) throw Error(path, name + ".dtype", "unknown dtype '" + info.dtype + "'");
    auto sh = v.find("shape");
    if (sh == v.end() || !sh->is_array()) throw Error(path, name + ".shape", "missing or not an array");
    if (sh->size() > kMaxDims) throw Error(path, name + ".shape", "more than 16 dimensions");
    uint64_t numel = 1;
    for (const auto& d : *sh) {
      if (!d.is_number_unsigned()) throw Error(path, name + ".shape", "dimensions must be non-negative integers");
      uint64_t dim = d.get<uint64_t>();
      if (dim > (uint64_t(1) << 48) || (dim != 0 && numel > (uint64_t(1) << 60) / dim))
        throw Error(path, name + ".shape", "dimensions too large");
      numel *= dim;
      info.shape.push_back(static_cast<int64_t>(dim));
    }
    auto off = v.find("data_offsets");
    if (off == v.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
        !(*off)[1].is_number_unsigned())
      throw Error(path, name + ".data_offsets", "must be two non-negative integers");
    info.begin = (*off)[0].get<uint64_t>();
    info.end = (*off)[1].get<uint64_t>();
    if (info.end < info.begin) throw Error(path, name + ".data_offsets", "end before begin");
    if (info.end > data_size)
      throw Error(path, name + ".data_offsets", "range [" + std::to_string(info.begin) + ", " + std::to_string(info.end) +
                                                    ") runs past the " + std::to_string(data_size) + "-byte data section (truncated?)");
    if (info.end - info.begin != numel * esize)
      throw Error(path, name, "shape and dtype need " + std::to_string(numel * esize) + " bytes but data_offsets span " +
                                  std::to_string(info.end - info.begin));
    index_[name] = infos_.size();
    infos_.push_back(std::move(info));
  }
  std::vector<const TensorInfo*> sorted;
  for (const auto& t : infos_) sorted.push_back(&t);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->begin < b->begin; });
  const TensorInfo* prev = nullptr;  // the non-empty tensor reaching furthest so far
  for (const TensorInfo* t : sorted) {
    if (t->end == t->begin) continue;
    if (prev && t->begin < prev->end)
      throw Error(path, t->name + ".data_offsets", "overlaps tensor '" + prev->name + "'");
    if (!prev || t->end > prev->end) prev = t;
  }
}

SafetensorsReader::~SafetensorsReader() = default;

const TensorInfo* SafetensorsReader::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &infos_[it->second];
}

torch::Tensor SafetensorsReader::tensor(const std::string& name) const {
  const TensorInfo* info = find(name);
  if (!info) throw Error(path_, name, "no such tensor");
  return tensor(*info);
}

torch::Tensor SafetensorsReader::tensor(const TensorInfo& info) const {
  const DTypeInfo* d = dtype_info(info.dtype);
  if (!d) throw Error(path_, info.name + ".dtype", "dtype '" + info.dtype + "' is not supported by this libtorch");
  auto t = torch::empty(info.shape, torch::TensorOptions().dtype(d->scalar));
  // copied in 4 MB pieces, each piece's mapped pages dropped once copied: the copy is what stays, so loading
  // a model never holds a second image of it (the mapping) beyond one piece
  constexpr uint64_t kPiece = uint64_t(4) << 20;
  auto* dst = static_cast<uint8_t*>(t.data_ptr());
  for (uint64_t at = info.begin; at < info.end; at += kPiece) {
    const uint64_t n = std::min(kPiece, info.end - at);
    std::memcpy(dst + (at - info.begin), data_ + at, n);
    file_->release(data_ + at, n);
  }
  return t;
}

std::map<std::string, torch::Tensor> load_safetensors(const std::string& path) {
  SafetensorsReader r(path);
  std::map<std::string, torch::Tensor> out;
  for (const auto& info : r.tensors()) out[info.name] = r.tensor(info);
  // int8 weights (kotsu export --int8): "<w>" int8 with "<w>_scale" float broadcastable to it -> float "<w>"
  const std::string suffix = "_scale";
  for (auto it = out.begin(); it != out.end();) {
    const std::string& n = it->first;
    if (n.size() > suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0) {
      auto w = out.find(n.substr(0, n.size() - suffix.size()));
      if (w != out.end() && w->second.scalar_type() == torch::kInt8) {
        const torch::Tensor& scale = it->second;
        const bool fits = scale.dim() == w->second.dim() && scale.is_floating_point() &&
                          [&] {
                            for (int64_t d = 0; d < scale.dim(); ++d)
                              if (scale.size(d) != 1 && scale.size(d) != w->second.size(d)) return false;
                            return true;
                          }();
        if (!fits) throw Error(path, n, "shape " + c10::str(scale.sizes()) + " does not scale int8 " + w->first + " " + c10::str(w->second.sizes()));
        w->second = w->second.to(torch::kFloat) * scale.to(torch::kFloat);
        it = out.erase(it);
        continue;
      }
    }
    ++it;
  }
  return out;
}

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<std::pair<std::string, torch::Tensor>> sorted;
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__" || name.empty()) throw Error(path, name, "invalid tensor name");
    const char* dn = dtype_name(t.scalar_type());
    if (!dn) throw Error(path, name, std::string("cannot store dtype ") + c10::toString(t.scalar_type()));
    sorted.emplace_back(name, t.detach().to(torch::kCPU).contiguous());
  }
  std::sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) { return a.first < b.first; });
  for (size_t i = 1; i < sorted.size(); ++i)
    if (sorted[i].first == sorted[i - 1].first) throw Error(path, sorted[i].first, "duplicate tensor name");

  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& [name, t] : sorted) {
    uint64_t bytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    h[name] = {{"dtype", dtype_name(t.scalar_type())}, {"shape", t.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string header = h.dump();
  while ((header.size() + 8) % 8 != 0) header.push_back(' ');
  uint64_t n = header.size();
  std::vector<const void*> parts;
  std::vector<size_t> sizes;
  parts.push_back(&n);
  sizes.push_back(8);
  parts.push_back(header.data());
  sizes.push_back(header.size());
  for (const auto& [name, t] : sorted) {
    parts.push_back(t.data_ptr());
    sizes.push_back(static_cast<size_t>(t.numel()) * t.element_size());
  }
  write_atomic(path, parts.data(), sizes.data(), parts.size());
}

}  // namespace kotsu
