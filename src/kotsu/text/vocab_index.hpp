// kotsu/text/vocab_index: token string -> id lookup for tokenizer vocabularies. An open-addressing table of
// (hash, id) pairs over one contiguous arena of token bytes: a 50k-token vocabulary takes well under a
// megabyte and lookups stay in cache, several times faster than std::unordered_map<std::string, ...>
// whose scattered nodes miss the cache on every probe (measured by bench/tokenize).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kotsu {

class VocabIndex {
 public:
  VocabIndex() = default;
  // Index of tokens[i] -> i; the first of duplicate tokens wins.
  explicit VocabIndex(const std::vector<std::string>& tokens);
  int64_t find(std::string_view s) const;  // -1 when absent
  size_t size() const { return count_; }
  size_t max_bytes() const { return max_bytes_; }

 private:
  struct Slot {
    uint32_t hash = 0;
    int32_t id = -1;
  };
  static uint32_t hash(std::string_view s);
  std::vector<Slot> slots_;
  std::vector<uint32_t> offsets_;  // token id -> arena offset; offsets_[id + 1] ends it
  std::string arena_;
  size_t mask_ = 0, count_ = 0, max_bytes_ = 0;
};

}  // namespace kotsu
