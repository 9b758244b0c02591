#include "kotsu/io/gguf.hpp"

#include <climits>
#include <cstring>
#include <set>

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

// ggml's tensor types (ggml.h's enum ggml_type): elements per block and bytes per block; {0, 0} for the
// ids ggml removed (4, 5, 31-33, 36-38). llama.cpp's loader refuses any other type, as this reader does.
struct TypeTraits {
  uint32_t block, bytes;
  const char* name;
};
constexpr TypeTraits kTypes[] = {
    {1, 4, "F32"},        {1, 2, "F16"},       {32, 18, "Q4_0"},    {32, 20, "Q4_1"},     {0, 0, nullptr},
    {0, 0, nullptr},      {32, 22, "Q5_0"},    {32, 24, "Q5_1"},    {32, 34, "Q8_0"},     {32, 36, "Q8_1"},
    {256, 84, "Q2_K"},    {256, 110, "Q3_K"},  {256, 144, "Q4_K"},  {256, 176, "Q5_K"},   {256, 210, "Q6_K"},
    {256, 292, "Q8_K"},   {256, 66, "IQ2_XXS"}, {256, 74, "IQ2_XS"}, {256, 98, "IQ3_XXS"}, {256, 50, "IQ1_S"},
    {32, 18, "IQ4_NL"},   {256, 110, "IQ3_S"}, {256, 82, "IQ2_S"},  {256, 136, "IQ4_XS"}, {1, 1, "I8"},
    {1, 2, "I16"},        {1, 4, "I32"},       {1, 8, "I64"},       {1, 8, "F64"},        {256, 56, "IQ1_M"},
    {1, 2, "BF16"},       {0, 0, nullptr},     {0, 0, nullptr},     {0, 0, nullptr},      {256, 54, "TQ1_0"},
    {256, 66, "TQ2_0"},   {0, 0, nullptr},     {0, 0, nullptr},     {0, 0, nullptr},      {32, 17, "MXFP4"},
};
constexpr uint32_t kTypeCount = sizeof(kTypes) / sizeof(kTypes[0]);

constexpr uint32_t kMaxDims = 4;    // GGML_MAX_DIMS
constexpr size_t kMaxNameBytes = 63;  // GGML_MAX_NAME - 1

}  // namespace

const char* gguf_type_name(uint32_t type) {
  return type < kTypeCount && kTypes[type].name ? kTypes[type].name : nullptr;
}

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
    nlohmann::json value = read_value(c, type, key);
    if (!g.kv.emplace(key, std::move(value)).second) throw Error(path, key, "appears twice in the metadata");
  }
  uint64_t alignment = 32;  // GGUF_DEFAULT_ALIGNMENT
  if (g.has("general.alignment")) {
    const auto& a = g.kv.at("general.alignment");
    if (!a.is_number_unsigned() || a.get<uint64_t>() == 0 || (a.get<uint64_t>() & (a.get<uint64_t>() - 1)) != 0 ||
        a.get<uint64_t>() > (uint64_t(1) << 30))
      throw Error(path, "general.alignment", "must be a power of two, not " + a.dump());
    alignment = a.get<uint64_t>();
  }
  auto pad = [&](uint64_t x) { return (x + alignment - 1) / alignment * alignment; };
  std::set<std::string> names;
  uint64_t data_size = 0;  // the tensors' bytes, each padded to the alignment, in file order (as llama.cpp expects)
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t;
    t.name = c.str("tensor[" + std::to_string(i) + "].name");
    const std::string field = "tensor[" + std::to_string(i) + "] '" + t.name.substr(0, 80) + "'";
    if (t.name.size() > kMaxNameBytes) throw Error(path, field, "name is longer than " + std::to_string(kMaxNameBytes) + " bytes");
    if (!names.insert(t.name).second) throw Error(path, field, "appears twice in the tensor directory");
    uint32_t n_dims = c.get<uint32_t>(field);
    if (n_dims == 0 || n_dims > kMaxDims) throw Error(path, field, std::to_string(n_dims) + " dimensions (1 to 4 are allowed)");
    uint64_t elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t n = c.get<uint64_t>(field);
      if (n > uint64_t(INT64_MAX) || (n != 0 && elements > uint64_t(INT64_MAX) / n))
        throw Error(path, field, "its dimensions overflow a 64-bit element count");
      elements *= n;
      t.dims.push_back(n);
    }
    t.type = c.get<uint32_t>(field);
    if (!gguf_type_name(t.type)) throw Error(path, field, "unknown tensor type " + std::to_string(t.type));
    const TypeTraits& tt = kTypes[t.type];
    if (t.dims[0] % tt.block != 0)
      throw Error(path, field, "first dimension " + std::to_string(t.dims[0]) + " is not a multiple of " + tt.name + "'s block of " +
                                   std::to_string(tt.block));
    t.offset = c.get<uint64_t>(field);
    if (t.offset != data_size)
      throw Error(path, field, "offset " + std::to_string(t.offset) + " is not where the previous tensor ends (" + std::to_string(data_size) + ")");
    const uint64_t blocks = elements / tt.block;
    if (blocks > (uint64_t(1) << 62) / tt.bytes) throw Error(path, field, "is larger than any file");
    t.bytes = blocks * tt.bytes;
    data_size = pad(data_size + t.bytes);
    if (data_size > f.size()) throw Error(path, field, "its data would end past the end of the file");
    g.tensors.push_back(std::move(t));
  }
  g.data_offset = pad(f.size() - c.left());
  if (!g.tensors.empty()) {
    // the last tensor need not be padded to the alignment at the end of the file
    const uint64_t unpadded = g.tensors.back().offset + g.tensors.back().bytes;
    if (g.data_offset > f.size() || unpadded > f.size() - g.data_offset)
      throw Error(path, "tensor data", "the tensors need " + std::to_string(unpadded) + " bytes after offset " +
                                           std::to_string(g.data_offset) + " but the file has " + std::to_string(f.size()) + " bytes (truncated?)");
  }
  return g;
}

}  // namespace kotsu
