// kotsu/text/wordpiece: the WordPiece subword model (BERT): greedy longest-match-first with "##"
// continuations, and BERT's vocab.txt reader. BERT's normaliser and pre-tokenizer are steps of the
// Tokenizer pipeline (text/tokenizer), configured by WordPieceOptions. Written by hand: no Debian library
// implements WordPiece.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kotsu/text/vocab_index.hpp"

namespace kotsu {

// BertNormalizer options (tokenizer.json) / BertTokenizer's (tokenizer_config.json).
struct WordPieceOptions {
  bool lowercase = true;
  std::optional<bool> strip_accents;  // unset: follows lowercase (the Hugging Face default)
  bool clean_text = true;
  bool chinese_chars = true;
};

// Greedy longest-match-first WordPiece of one word: non-initial pieces carry `prefix`; a word over
// max_chars characters, or one with no match, becomes the single token `unk`. Spans are byte ranges in word.
// max_token_bytes (0: unknown) is the longest token in the vocabulary, to skip lookups that cannot match.
void wordpiece_split(std::string_view word, const VocabIndex& ids, const std::string& prefix, size_t max_chars, int64_t unk,
                     std::vector<int64_t>& out, std::vector<std::pair<uint32_t, uint32_t>>* spans, size_t max_token_bytes = 0);

// vocab.txt: one token per line (id = line number), UTF-8; refused with kotsu::Error when it is not.
std::vector<std::string> read_vocab_txt(const std::string& path);

}  // namespace kotsu
