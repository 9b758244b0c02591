#include "kotsu/text/vocab_index.hpp"

#include <cstring>

namespace kotsu {

uint32_t VocabIndex::hash(std::string_view s) {
  // FNV-1a, 8 bytes at a time folded: short tokens hash in a few cycles
  uint64_t h = 0xcbf29ce484222325ull;
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = (h ^ w) * 0x100000001b3ull;
    h ^= h >> 29;
  }
  for (; i < s.size(); ++i) h = (h ^ static_cast<unsigned char>(s[i])) * 0x100000001b3ull;
  h ^= h >> 32;
  return static_cast<uint32_t>(h) | 1u;  // 0 marks an empty slot
}

VocabIndex::VocabIndex(const std::vector<std::string>& tokens) {
  size_t bytes = 0;
  for (const auto& t : tokens) bytes += t.size();
  arena_.reserve(bytes);
  offsets_.reserve(tokens.size() + 1);
  for (const auto& t : tokens) {
    offsets_.push_back(static_cast<uint32_t>(arena_.size()));
    arena_ += t;
    max_bytes_ = std::max(max_bytes_, t.size());
  }
  offsets_.push_back(static_cast<uint32_t>(arena_.size()));
  size_t cap = 16;
  while (cap < tokens.size() * 2) cap <<= 1;
  slots_.assign(cap, Slot{});
  mask_ = cap - 1;
  for (size_t id = 0; id < tokens.size(); ++id) {
    if (find(tokens[id]) >= 0) continue;
    uint32_t h = hash(tokens[id]);
    size_t i = h & mask_;
    while (slots_[i].hash != 0) i = (i + 1) & mask_;
    slots_[i] = Slot{h, static_cast<int32_t>(id)};
    ++count_;
  }
}

int64_t VocabIndex::find(std::string_view s) const {
  if (slots_.empty()) return -1;
  uint32_t h = hash(s);
  for (size_t i = h & mask_;; i = (i + 1) & mask_) {
    const Slot& slot = slots_[i];
    if (slot.hash == 0) return -1;
    if (slot.hash == h) {
      uint32_t b = offsets_[static_cast<size_t>(slot.id)], e = offsets_[static_cast<size_t>(slot.id) + 1];
      if (e - b == s.size() && std::memcmp(arena_.data() + b, s.data(), s.size()) == 0) return slot.id;
    }
  }
}

}  // namespace kotsu
