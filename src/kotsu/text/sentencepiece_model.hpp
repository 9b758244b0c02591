// kotsu/text/sentencepiece_model: reads SentencePiece .model files (a ModelProto in protobuf wire format:
// pieces with scores and types, trainer and normalizer specs) and SentencePiece's normalizer: the
// precompiled charsmap (a darts-clone double-array trie of rewrite rules, longest match first), then
// removal of extra whitespace, the dummy-prefix space and escaping spaces as U+2581.
// Written by hand: Debian's libsentencepiece carries protobuf-lite 3.14 and cannot share a process with
// libtorch's libprotobuf 3.21 (their static initialisers collide). python3-sentencepiece, the same library,
// is the oracle in tests.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kotsu {

class CharsMap {
 public:
  CharsMap() = default;
  // blob: uint32 trie size, trie units, then NUL-separated replacement strings. Validated here.
  CharsMap(std::string blob, const std::string& source, const std::string& field);
  bool empty() const { return units_.empty(); }
  // The replacement of the longest rule matching a prefix of `s` and the bytes it consumes; without a
  // rule, the first character itself (an invalid byte becomes U+FFFD, consuming one byte).
  std::pair<std::string_view, size_t> normalize_prefix(std::string_view s) const;
  const std::string& blob() const { return blob_; }

 private:
  std::string blob_;
  std::vector<uint32_t> units_;
  std::string_view strings_;
};

struct SentencePieceSpec {
  struct Piece {
    std::string text;
    float score = 0;
    int type = 1;  // 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
  };
  std::vector<Piece> pieces;
  int model_type = 1;  // 1 unigram, 2 BPE, 3 word, 4 char
  bool byte_fallback = false;
  int64_t unk_id = 0, bos_id = 1, eos_id = 2, pad_id = -1;
  bool treat_whitespace_as_suffix = false;
  std::string normalizer_name;
  std::string charsmap;  // raw precompiled_charsmap bytes
  bool add_dummy_prefix = true, remove_extra_whitespaces = true, escape_whitespaces = true;
};

SentencePieceSpec read_sentencepiece_model(const std::string& path);

}  // namespace kotsu
