// kotsu/text/wordpiece: BERT tokenization, exactly as Hugging Face's BertTokenizer / tokenizers'
// BertNormalizer + BertPreTokenizer + WordPiece do it: drop control characters, map whitespace to spaces,
// put spaces around CJK ideographs, lower-case and strip accents per config, split on whitespace and
// punctuation, then greedy longest-match-first WordPiece with "##" continuations (words over 100
// characters, or with no match, become [UNK]). Written by hand on utf8proc: no Debian library does it.
// Sources: vocab.txt (+ tokenizer_config.json), tokenizer.json (model.type WordPiece), or the
// tokenizer.ggml.* keys of a GGUF file (llama.cpp's "phantom space" vocab is mapped back).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kotsu/text/vocab_index.hpp"

namespace kotsu {

// Greedy longest-match-first WordPiece of one word: non-initial pieces carry `prefix`; a word over
// max_chars characters, or one with no match, becomes the single token `unk`. Spans are byte ranges in word.
// max_token_bytes (0: unknown) is the longest token in the vocabulary, to skip lookups that cannot match.
void wordpiece_split(std::string_view word, const VocabIndex& ids, const std::string& prefix,
                     size_t max_chars, int64_t unk, std::vector<int64_t>& out, std::vector<std::pair<uint32_t, uint32_t>>* spans,
                     size_t max_token_bytes = 0);

struct WordPieceOptions {
  bool lowercase = true;
  std::optional<bool> strip_accents;  // unset: follows lowercase (the Hugging Face default)
  bool clean_text = true;
  bool chinese_chars = true;
  std::string prefix = "##";
  size_t max_chars_per_word = 100;
};

struct Encoding {
  std::vector<int64_t> ids;
  std::vector<int64_t> type_ids;
};

class WordPieceTokenizer {
 public:
  WordPieceTokenizer(std::vector<std::string> vocab, WordPieceOptions opts, std::string source);

  static WordPieceTokenizer from_vocab_txt(const std::string& path, WordPieceOptions opts = {});
  static WordPieceTokenizer from_tokenizer_json(const std::string& path);
  static WordPieceTokenizer from_gguf(const std::string& path);
  // tokenizer.json when present, else vocab.txt with tokenizer_config.json's options.
  static WordPieceTokenizer from_model_dir(const std::string& dir);

  // Normalised, pre-tokenised words (before WordPiece).
  std::vector<std::string> pre_tokenize(std::string_view text) const;
  // Token ids without special tokens.
  std::vector<int64_t> encode(std::string_view text) const;
  // [CLS] text [SEP], or [CLS] a [SEP] b [SEP]; truncated (longest first) to max_len tokens in all.
  Encoding encode_for_model(std::string_view text, size_t max_len) const;
  Encoding encode_pair_for_model(std::string_view a, std::string_view b, size_t max_len) const;

  int64_t id_of(const std::string& token) const;  // -1 when absent
  const std::string& token(int64_t id) const { return vocab_.at(static_cast<size_t>(id)); }
  size_t vocab_size() const { return vocab_.size(); }
  int64_t cls_id() const { return cls_; }
  int64_t sep_id() const { return sep_; }
  int64_t pad_id() const { return pad_; }
  int64_t unk_id() const { return unk_; }
  const WordPieceOptions& options() const { return opts_; }

  // Writes vocab.txt and tokenizer_config.json into `dir` (atomically), loadable by Hugging Face.
  void save(const std::string& dir) const;

 private:
  void wordpiece(const std::string& word, std::vector<int64_t>& out) const;

  std::vector<std::string> vocab_;
  VocabIndex ids_;
  WordPieceOptions opts_;
  std::string source_;
  int64_t cls_ = -1, sep_ = -1, pad_ = -1, unk_ = -1;
};

}  // namespace kotsu
