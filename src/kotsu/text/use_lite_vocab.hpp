// kotsu/text/use_lite_vocab: the tokenizer of Universal Sentence Encoder Lite as its TF.js package runs it
// (vocab.json: [piece, score] pairs, the first 6 reserved). A unigram-style best path over code points,
// reproduced with the package's own rules so the ids feed the imported weights exactly: a piece ending at
// a position replaces the best so far when it scores at least as high (later ties win, a 0 total counts
// as unset), a code point no piece covers is the unknown id 0, the walk back steps by each piece's UTF-16
// length, runs of unknown ids fuse. Written by hand: no library implements this variant.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace kotsu {

class UseLiteVocab {
 public:
  UseLiteVocab(std::vector<std::pair<std::string, double>> pieces, size_t reserved, std::string source);
  // Ids of an already normalized text ("▁" + NFKC text with spaces as "▁"); spans are byte ranges in it.
  void encode(std::string_view text, std::vector<int64_t>& ids, std::vector<std::pair<uint32_t, uint32_t>>* spans) const;
  size_t vocab_size() const { return pieces_.size(); }
  const std::string& token(int64_t id) const { return pieces_.at(static_cast<size_t>(id)).first; }
  int64_t id_of(std::string_view piece) const;

 private:
  std::vector<std::pair<std::string, double>> pieces_;
  std::vector<int64_t> utf16_len_;
  std::unordered_map<std::string, int64_t> ids_;  // matchable pieces; the last of duplicates wins, as in its trie
  size_t max_cps_ = 1;
  std::string source_;
};

}  // namespace kotsu
