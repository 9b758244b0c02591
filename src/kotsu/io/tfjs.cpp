#include "kotsu/io/tfjs.hpp"

#include <torch/torch.h>

#include <cstring>
#include <filesystem>

#include "kotsu/core/error.hpp"
#include "kotsu/io/config_fields.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/io/json_file.hpp"

namespace kotsu {

namespace {

constexpr uint64_t kMaxElements = uint64_t(1) << 34;  // 64 GiB of float32: anything larger is a lie

float half_to_float(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, mant = h & 0x3FF, bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while (!(mant & 0x400)) {
        mant <<= 1;
        --exp;
      }
      bits = sign | (exp << 23) | ((mant & 0x3FF) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7F800000 | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// The bytes of one manifest group: its shards read in order and laid end to end.
struct GroupBytes {
  std::string data;
  std::vector<std::pair<std::string, uint64_t>> shard_ends;  // shard path, end offset
  std::string shard_at(uint64_t offset) const {
    for (const auto& [p, end] : shard_ends)
      if (offset < end) return p;
    return shard_ends.empty() ? "" : shard_ends.back().first;
  }
};

}  // namespace

const TfjsWeight* TfjsModel::find(const std::string& name) const {
  for (const auto& w : weights)
    if (w.name == name) return &w;
  return nullptr;
}

TfjsModel read_tfjs(const std::string& model_json) {
  namespace fs = std::filesystem;
  nlohmann::json doc = read_json(model_json, size_t(256) << 20);
  if (!doc.is_object()) throw Error(model_json, "", "is not a JSON object");
  TfjsModel m;
  m.path = model_json;
  if (doc.contains("format") && doc["format"].is_string()) m.format = doc["format"].get<std::string>();
  if (doc.contains("modelTopology")) m.topology = doc["modelTopology"];
  const auto& manifest = doc.contains("weightsManifest") ? doc["weightsManifest"] : nlohmann::json();
  if (!manifest.is_array()) throw Error(model_json, "weightsManifest", "missing or not an array");
  const fs::path dir = fs::path(model_json).parent_path();
  for (size_t g = 0; g < manifest.size(); ++g) {
    const auto& group = manifest[g];
    const std::string gfield = "weightsManifest[" + std::to_string(g) + "]";
    if (!group.is_object() || !group.contains("paths") || !group["paths"].is_array() || !group.contains("weights") ||
        !group["weights"].is_array())
      throw Error(model_json, gfield, "needs 'paths' and 'weights' arrays");
    GroupBytes bytes;
    for (const auto& p : group["paths"]) {
      if (!p.is_string()) throw Error(model_json, gfield + ".paths", "holds a non-string");
      std::string rel = p.get<std::string>();
      if (rel.find("..") != std::string::npos || (!rel.empty() && rel[0] == '/'))
        throw Error(model_json, gfield + ".paths", "shard path '" + rel + "' leaves the model directory");
      std::string shard = (dir / rel).string();
      if (!file_exists(shard)) throw Error(shard, gfield, "weight shard is missing");
      bytes.data += read_file(shard, size_t(4) << 30);
      bytes.shard_ends.emplace_back(shard, bytes.data.size());
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < group["weights"].size(); ++i) {
      const auto& spec = group["weights"][i];
      std::string wfield = gfield + ".weights[" + std::to_string(i) + "]";
      if (!spec.is_object() || !spec.contains("name") || !spec["name"].is_string() || !spec.contains("shape") ||
          !spec["shape"].is_array())
        throw Error(model_json, wfield, "needs a name and a shape");
      TfjsWeight w;
      w.name = spec["name"].get<std::string>();
      wfield = w.name;
      w.dtype = json_string(spec, "dtype", "float32", model_json, wfield + ".dtype");
      uint64_t count = 1;
      for (const auto& d : spec["shape"]) {
        if (!d.is_number_integer() || d.get<int64_t>() < 0) throw Error(model_json, wfield + ".shape", "holds a non-dimension");
        w.shape.push_back(d.get<int64_t>());
        uint64_t n = d.get<uint64_t>();
        if (n != 0 && count > kMaxElements / n) throw Error(model_json, wfield + ".shape", "is absurdly large");
        count *= n;
      }
      if (spec.contains("quantization") && !spec["quantization"].is_null()) {
        if (!spec["quantization"].is_object()) throw Error(model_json, wfield + ".quantization", "must be an object");
        w.quantization = json_string(spec["quantization"], "dtype", "", model_json, wfield + ".quantization.dtype");
        if (w.quantization.empty()) throw Error(model_json, wfield + ".quantization.dtype", "missing");
      }
      const uint64_t left = bytes.data.size() - offset;
      const auto* src = reinterpret_cast<const uint8_t*>(bytes.data.data()) + offset;
      auto need = [&](uint64_t n) {
        if (n > left)
          throw Error(bytes.shard_at(offset), wfield, "needs " + std::to_string(n) + " bytes but the group's shards hold only " +
                                                          std::to_string(left) + " more (truncated shard?)");
      };
      if (w.dtype == "string") {  // each element: uint32 length + bytes; skipped
        uint64_t at = 0;
        for (uint64_t k = 0; k < count; ++k) {
          need(at + 4);
          uint32_t len;
          std::memcpy(&len, src + at, 4);
          need(at + 4 + len);
          at += 4 + len;
        }
        offset += at;
        m.weights.push_back(std::move(w));
        continue;
      }
      if (w.dtype != "float32" && w.dtype != "int32" && w.dtype != "bool")
        throw Error(model_json, wfield + ".dtype", "unsupported dtype '" + w.dtype + "'");
      if (!w.quantization.empty() && w.dtype != "float32")
        throw Error(model_json, wfield + ".quantization", "quantized " + w.dtype + " weights are not supported");
      const int64_t n = static_cast<int64_t>(count);
      if (w.quantization.empty()) {
        const uint64_t size = w.dtype == "bool" ? count : count * 4;
        need(size);
        auto t = torch::empty({n}, w.dtype == "float32" ? torch::kFloat32 : w.dtype == "int32" ? torch::kInt32 : torch::kBool);
        std::memcpy(t.data_ptr(), src, size);
        w.value = t.view(w.shape);
        offset += size;
      } else if (w.quantization == "uint8" || w.quantization == "uint16") {
        const auto& q = spec["quantization"];
        if (!q.contains("scale") || !q["scale"].is_number() || !q.contains("min") || !q["min"].is_number())
          throw Error(model_json, wfield + ".quantization", "needs numeric scale and min");
        const float scale = q["scale"].get<float>(), mn = q["min"].get<float>();
        const uint64_t width = w.quantization == "uint8" ? 1 : 2;
        need(count * width);
        auto t = torch::empty({n}, torch::kFloat32);
        float* out = t.data_ptr<float>();
        for (uint64_t k = 0; k < count; ++k) {
          uint32_t v = src[k * width];
          if (width == 2) v |= static_cast<uint32_t>(src[k * width + 1]) << 8;
          out[k] = static_cast<float>(v) * scale + mn;
        }
        w.value = t.view(w.shape);
        offset += count * width;
      } else if (w.quantization == "float16") {
        need(count * 2);
        auto t = torch::empty({n}, torch::kFloat32);
        float* out = t.data_ptr<float>();
        for (uint64_t k = 0; k < count; ++k) {
          uint16_t h;
          std::memcpy(&h, src + 2 * k, 2);
          out[k] = half_to_float(h);
        }
        w.value = t.view(w.shape);
        offset += count * 2;
      } else {
        throw Error(model_json, wfield + ".quantization", "unknown quantization dtype '" + w.quantization + "'");
      }
      m.weights.push_back(std::move(w));
    }
    if (offset != bytes.data.size())
      throw Error(model_json, gfield, "the shards hold " + std::to_string(bytes.data.size() - offset) +
                                          " bytes more than the manifest's weights (wrong manifest?)");
  }
  return m;
}

}  // namespace kotsu
