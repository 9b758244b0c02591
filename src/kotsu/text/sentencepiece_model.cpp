#include "kotsu/text/sentencepiece_model.hpp"

#include <cstring>

#include "kotsu/core/error.hpp"
#include "kotsu/io/file.hpp"

namespace kotsu {

namespace {

constexpr size_t kMaxModelBytes = size_t(1) << 30;

// darts-clone double-array unit fields
bool has_leaf(uint32_t u) { return ((u >> 8) & 1) == 1; }
uint32_t value_of(uint32_t u) { return u & ((1u << 31) - 1); }
uint32_t label_of(uint32_t u) { return u & ((1u << 31) | 0xFF); }
uint32_t offset_of(uint32_t u) { return (u >> 10) << ((u & (1u << 9)) >> 6); }

size_t valid_char_len(std::string_view s) {
  unsigned char c = static_cast<unsigned char>(s[0]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (n == 0 || n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((static_cast<unsigned char>(s[k]) & 0xC0) != 0x80) return 0;
  // overlong forms and surrogates are invalid too
  uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[k]) & 0x3F);
  if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return n;
}

// Protobuf wire format, bounds-checked.
class Wire {
 public:
  Wire(const uint8_t* p, const uint8_t* end, const std::string& file, std::string where)
      : p_(p), end_(end), file_(file), where_(std::move(where)) {}
  bool done() const { return p_ >= end_; }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ >= end_) fail("truncated varint");
      uint8_t b = *p_++;
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    fail("varint longer than 10 bytes");
  }
  std::string_view bytes() {
    uint64_t n = varint();
    if (n > static_cast<uint64_t>(end_ - p_)) fail("field of " + std::to_string(n) + " bytes runs past the end (truncated?)");
    std::string_view s(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return s;
  }
  float fixed32f() {
    if (end_ - p_ < 4) fail("truncated fixed32");
    float f;
    std::memcpy(&f, p_, 4);
    p_ += 4;
    return f;
  }
  void skip(uint32_t wire_type) {
    switch (wire_type) {
      case 0: varint(); break;
      case 1:
        if (end_ - p_ < 8) fail("truncated fixed64");
        p_ += 8;
        break;
      case 2: bytes(); break;
      case 5: fixed32f(); break;
      default: fail("unknown wire type " + std::to_string(wire_type));
    }
  }
  Wire sub(const std::string& where) {
    std::string_view s = bytes();
    auto* b = reinterpret_cast<const uint8_t*>(s.data());
    return Wire(b, b + s.size(), file_, where);
  }
  [[noreturn]] void fail(const std::string& why) const { throw Error(file_, where_, why); }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
  const std::string& file_;
  std::string where_;
};

}  // namespace

CharsMap::CharsMap(std::string blob, const std::string& source, const std::string& field) : blob_(std::move(blob)) {
  if (blob_.empty()) return;
  if (blob_.size() < 4) throw Error(source, field, "precompiled charsmap shorter than its 4-byte header");
  uint32_t trie_bytes;
  std::memcpy(&trie_bytes, blob_.data(), 4);
  if (trie_bytes >= blob_.size() - 4 + 1 || trie_bytes % 4 != 0 || trie_bytes == 0)
    throw Error(source, field, "precompiled charsmap trie size " + std::to_string(trie_bytes) + " does not fit the blob");
  units_.resize(trie_bytes / 4);
  std::memcpy(units_.data(), blob_.data() + 4, trie_bytes);
  strings_ = std::string_view(blob_).substr(4 + trie_bytes);
}

std::pair<std::string_view, size_t> CharsMap::normalize_prefix(std::string_view s) const {
  size_t longest = 0;
  uint32_t value = 0;
  if (!units_.empty()) {
    size_t pos = 0;
    uint32_t unit = units_[0];
    pos ^= offset_of(unit);
    for (size_t i = 0; i < s.size(); ++i) {
      pos ^= static_cast<unsigned char>(s[i]);
      if (pos >= units_.size()) break;
      unit = units_[pos];
      if (label_of(unit) != static_cast<unsigned char>(s[i])) break;
      pos ^= offset_of(unit);
      if (has_leaf(unit)) {
        if (pos >= units_.size()) break;
        longest = i + 1;
        value = value_of(units_[pos]);
      }
    }
  }
  if (longest > 0 && value < strings_.size()) {
    std::string_view rest = strings_.substr(value);
    size_t nul = rest.find('\0');
    return {rest.substr(0, nul), longest};
  }
  size_t n = valid_char_len(s);
  if (n == 0) return {"\xEF\xBF\xBD", 1};
  return {s.substr(0, n), n};
}

SentencePieceSpec read_sentencepiece_model(const std::string& path) {
  std::string data = read_file(path, kMaxModelBytes);
  auto* b = reinterpret_cast<const uint8_t*>(data.data());
  Wire w(b, b + data.size(), path, "ModelProto");
  SentencePieceSpec spec;
  while (!w.done()) {
    uint64_t tag = w.varint();
    uint32_t field = static_cast<uint32_t>(tag >> 3), type = static_cast<uint32_t>(tag & 7);
    if (field == 1 && type == 2) {
      Wire pw = w.sub("pieces[" + std::to_string(spec.pieces.size()) + "]");
      SentencePieceSpec::Piece piece;
      while (!pw.done()) {
        uint64_t t = pw.varint();
        uint32_t f = static_cast<uint32_t>(t >> 3), ty = static_cast<uint32_t>(t & 7);
        if (f == 1 && ty == 2) piece.text = std::string(pw.bytes());
        else if (f == 2 && ty == 5) piece.score = pw.fixed32f();
        else if (f == 3 && ty == 0) piece.type = static_cast<int>(pw.varint());
        else pw.skip(ty);
      }
      spec.pieces.push_back(std::move(piece));
    } else if (field == 2 && type == 2) {
      Wire tw = w.sub("trainer_spec");
      while (!tw.done()) {
        uint64_t t = tw.varint();
        uint32_t f = static_cast<uint32_t>(t >> 3), ty = static_cast<uint32_t>(t & 7);
        if (ty != 0) {
          tw.skip(ty);
          continue;
        }
        int64_t v = static_cast<int64_t>(tw.varint());
        if (f == 3) spec.model_type = static_cast<int>(v);
        else if (f == 35) spec.byte_fallback = v != 0;
        else if (f == 24) spec.treat_whitespace_as_suffix = v != 0;
        else if (f == 40) spec.unk_id = static_cast<int32_t>(v);
        else if (f == 41) spec.bos_id = static_cast<int32_t>(v);
        else if (f == 42) spec.eos_id = static_cast<int32_t>(v);
        else if (f == 43) spec.pad_id = static_cast<int32_t>(v);
      }
    } else if (field == 3 && type == 2) {
      Wire nw = w.sub("normalizer_spec");
      while (!nw.done()) {
        uint64_t t = nw.varint();
        uint32_t f = static_cast<uint32_t>(t >> 3), ty = static_cast<uint32_t>(t & 7);
        if (f == 1 && ty == 2) spec.normalizer_name = std::string(nw.bytes());
        else if (f == 2 && ty == 2) spec.charsmap = std::string(nw.bytes());
        else if (f == 3 && ty == 0) spec.add_dummy_prefix = nw.varint() != 0;
        else if (f == 4 && ty == 0) spec.remove_extra_whitespaces = nw.varint() != 0;
        else if (f == 5 && ty == 0) spec.escape_whitespaces = nw.varint() != 0;
        else nw.skip(ty);
      }
    } else {
      w.skip(type);
    }
  }
  if (spec.pieces.empty()) throw Error(path, "pieces", "no pieces: not a SentencePiece model");
  if (spec.model_type != 1 && spec.model_type != 2)
    throw Error(path, "trainer_spec.model_type", "model type " + std::to_string(spec.model_type) +
                                                     " is not supported (1 unigram and 2 BPE are)");
  auto check = [&](int64_t id, const char* field) {
    if (id >= static_cast<int64_t>(spec.pieces.size())) throw Error(path, field, std::to_string(id) + " is not a piece id");
  };
  check(spec.unk_id, "trainer_spec.unk_id");
  check(spec.bos_id, "trainer_spec.bos_id");
  check(spec.eos_id, "trainer_spec.eos_id");
  check(spec.pad_id, "trainer_spec.pad_id");
  return spec;
}

}  // namespace kotsu
