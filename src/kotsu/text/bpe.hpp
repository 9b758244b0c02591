// kotsu/text/bpe: the BPE subword model of Hugging Face tokenizers (models/bpe), also used for
// SentencePiece-BPE vocabularies (Llama): a word starts as characters (or, byte-level, as GPT-2's
// mapped bytes) and the adjacent pair of lowest merge rank is merged until none applies (ties: leftmost).
// Merges come from a merges list (rank = position) or from piece scores as SentencePiece and llama.cpp
// do it (every split of a piece into two pieces is a merge; higher score first, equal scores tie).
// Characters outside the vocabulary become <0xXX> byte tokens (byte_fallback) or the unknown token.
// Written by hand: no Debian library implements tokenizer.json's BPE.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kotsu/text/vocab_index.hpp"

namespace kotsu {

struct BpeOptions {
  std::string unk_token;                  // empty: characters without a token are dropped (GPT-2 never has any)
  std::string continuing_subword_prefix;  // prepended to non-initial characters (rare)
  std::string end_of_word_suffix;         // appended to the last character (e.g. "</w>")
  bool fuse_unk = false;                  // runs of unknown characters become one unknown token
  bool byte_fallback = false;             // unknown characters become their <0xXX> byte tokens
  bool ignore_merges = false;             // a word that is itself a token is taken whole (Llama-3)
  bool byte_level = false;                // the word is raw bytes, mapped by GPT-2's byte map first
};

using Span = std::pair<uint32_t, uint32_t>;  // byte range [first, second)

class BpeModel {
 public:
  // merges: pairs of tokens in rank order; each pair's concatenation must be a token.
  BpeModel(std::vector<std::string> vocab, const std::vector<std::pair<std::string, std::string>>& merges,
           BpeOptions opts, std::string source);
  // SentencePiece/llama.cpp style: merges derived from piece scores; `mergeable` (empty: all) says which
  // pieces a merge may produce (SentencePiece: normal and user-defined ones).
  static BpeModel from_scores(std::vector<std::string> vocab, const std::vector<float>& scores, BpeOptions opts,
                              std::string source, const std::vector<bool>& mergeable = {});

  // Appends the ids of one pre-tokenized word and, when `spans` is given, each token's byte span in `word`.
  void encode(std::string_view word, std::vector<int64_t>& ids, std::vector<Span>* spans) const;

  int64_t id_of(std::string_view token) const;  // -1 when absent
  const std::string& token(int64_t id) const { return vocab_.at(static_cast<size_t>(id)); }
  size_t vocab_size() const { return vocab_.size(); }
  const std::vector<std::string>& vocab() const { return vocab_; }
  const BpeOptions& options() const { return opts_; }
  // The merges in rank order (for saving tokenizer.json).
  std::vector<std::pair<std::string, std::string>> merges() const;

 private:
  BpeModel(std::vector<std::string> vocab, BpeOptions opts, std::string source);
  void index_vocab();
  void merge_word(std::string_view word, std::vector<int64_t>& ids, std::vector<Span>& spans) const;

  struct Merge {
    uint32_t rank;
    int64_t id;
  };
  static uint64_t key(int64_t a, int64_t b) { return (static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b); }

  std::vector<std::string> vocab_;
  VocabIndex ids_;
  // pair key -> merge, frozen into a flat open-addressing table (node-based maps miss the cache)
  struct MergeSlot {
    uint64_t key = ~0ull;
    Merge merge{0, -1};
  };
  std::vector<MergeSlot> merge_slots_;
  size_t merge_mask_ = 0, merge_count_ = 0;
  unsigned merge_shift_ = 60;
  void freeze_merges(const std::unordered_map<uint64_t, Merge>& merges);
  const Merge* find_merge(uint64_t k) const {
    for (size_t i = (k * 0x9E3779B97F4A7C15ull) >> merge_shift_;; i = (i + 1) & merge_mask_) {
      const MergeSlot& s = merge_slots_[i];
      if (s.key == k) return &s.merge;
      if (s.key == ~0ull) return nullptr;
    }
  }
  BpeOptions opts_;
  std::string source_;
  int64_t unk_ = -1;
  int64_t byte_ids_[256];      // byte-level: id of each mapped byte; else <0xXX> tokens (-1 when absent)

  struct WordCache;  // recent words -> ids and token lengths: a direct-mapped table shared between threads
  std::shared_ptr<WordCache> cache_;
};

}  // namespace kotsu
