#include "kotsu/io/gguf.hpp"

#include <cstring>

#include "kotsu/core/error.hpp"
#include "kotsu/io/file.hpp"

namespace kotsu {

namespace {

enum GgufType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12
};

class Cursor {
 public:
  Cursor(const MappedFile& f) : path_(f.path()), p_(f.data()), end_(f.data() + f.size()) {}
  template <class T>
  T get(const std::string& field) {
    need(sizeof(T), field);
    T v;
    std::memcpy(&v, p_, sizeof(T));
    p_ += sizeof(T);
    return v;
  }
  std::string str(const std::string& field) {
    uint64_t n = get<uint64_t>(field);
    need(n, field);
    std::string s(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return s;
  }
  void need(uint64_t n, const std::string& field) const {
    if (n > static_cast<uint64_t>(end_ - p_))
      throw Error(path_, field, "needs " + std::to_string(n) + " bytes but only " + std::to_string(end_ - p_) + " remain (truncated?)");
  }
  uint64_t left() const { return static_cast<uint64_t>(end_ - p_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* p_;
  const uint8_t* end_;
};

nlohmann::json read_scalar(Cursor& c, uint32_t type, const std::string& key) {
  switch (type) {
    case U8: return c.get<uint8_t>(key);
    case I8: return c.get<int8_t>(key);
    case U16: return c.get<uint16_t>(key);
    case I16: return c.get<int16_t>(key);
    case U32: return c.get<uint32_t>(key);
    case I32: return c.get<int32_t>(key);
    case F32: return c.get<float>(key);
    case BOOL: return c.get<uint8_t>(key) != 0;
    case STRING: return c.str(key);
    case U64: return c.get<uint64_t>(key);
    case I64: return c.get<int64_t>(key);
    case F64: return c.get<double>(key);
    default: throw Error(c.path(), key, "unknown value type " + std::to_string(type));
  }
}

nlohmann::json read_value(Cursor& c, uint32_t type, const std::string& key) {
  if (type != ARRAY) return read_scalar(c, type, key);
  uint32_t elem = c.get<uint32_t>(key);
  uint64_t n = c.get<uint64_t>(key);
  if (elem == ARRAY) throw Error(c.path(), key, "nested arrays are not supported");
  // every element takes at least one byte: a count beyond the bytes left is a lie, refuse before allocating
  if (n > c.left()) throw Error(c.path(), key, "array of " + std::to_string(n) + " elements is longer than the file");
  nlohmann::json arr = nlohmann::json::array();
  arr.get_ref<nlohmann::json::array_t&>().reserve(n);
  for (uint64_t i = 0; i < n; ++i) arr.push_back(read_scalar(c, elem, key));
  return arr;
}

}  // namespace

const nlohmann::json& GgufFile::at(const std::string& path, const std::string& key) const {
  auto it = kv.find(key);
  if (it == kv.end()) throw Error(path, key, "missing key");
  return it->second;
}

GgufFile read_gguf(const std::string& path) {
  MappedFile f(path);
  Cursor c(f);
  uint32_t magic = c.get<uint32_t>("magic");
  if (magic != 0x46554747u) throw Error(path, "magic", "not a GGUF file");
  GgufFile g;
  g.version = c.get<uint32_t>("version");
  if (g.version != 2 && g.version != 3)
    throw Error(path, "version", "GGUF version " + std::to_string(g.version) + " is not supported (2 and 3 are)");
  uint64_t n_tensors = c.get<uint64_t>("tensor_count");
  uint64_t n_kv = c.get<uint64_t>("kv_count");
  if (n_kv > c.left() || n_tensors > c.left()) throw Error(path, "kv_count", "counts exceed the file size");
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = c.str("kv[" + std::to_string(i) + "].key");
    uint32_t type = c.get<uint32_t>(key);
    g.kv[key] = read_value(c, type, key);
  }
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t;
    t.name = c.str("tensor[" + std::to_string(i) + "].name");
    uint32_t n_dims = c.get<uint32_t>(t.name);
    if (n_dims > 8) throw Error(path, t.name, "more than 8 dimensions");
    for (uint32_t d = 0; d < n_dims; ++d) t.dims.push_back(c.get<uint64_t>(t.name));
    t.type = c.get<uint32_t>(t.name);
    t.offset = c.get<uint64_t>(t.name);
    g.tensors.push_back(std::move(t));
  }
  return g;
}

}  // namespace kotsu
