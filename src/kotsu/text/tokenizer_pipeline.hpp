// kotsu/text/tokenizer_pipeline: the parts a Tokenizer is built from (internal to text/tokenizer*.cpp).
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "kotsu/text/bpe.hpp"
#include "kotsu/text/regex.hpp"
#include "kotsu/text/sentencepiece_model.hpp"
#include "kotsu/text/tokenizer.hpp"
#include "kotsu/text/unigram.hpp"
#include "kotsu/text/use_lite_vocab.hpp"
#include "kotsu/text/wordpiece.hpp"

namespace kotsu {

struct Normalizer {
  enum Kind { NFC, NFD, NFKC, NFKD, Lowercase, StripAccents, Strip, Replace, Prepend, Bert, SentencePiece } kind;
  std::string a, b;                 // Replace: pattern -> content (a regex when re is set); Prepend: a
  std::shared_ptr<Regex> re;
  bool left = true, right = true;   // Strip
  WordPieceOptions bert;            // Bert: lowercase, strip_accents, clean_text, chinese_chars
  // SentencePiece: charsmap rules (tokenizer.json's Precompiled), then SentencePiece's whitespace handling
  std::shared_ptr<CharsMap> charsmap;
  bool remove_extra_whitespaces = false, add_dummy_prefix = false, escape_whitespaces = false;
};

struct PreTokenizer {
  enum Kind { ByteLevel, Split, Whitespace, WhitespaceSplit, Bert, Metaspace, Digits, Punctuation } kind;
  std::shared_ptr<Regex> re;        // ByteLevel (use_regex) and Split (a regex pattern)
  std::string literal;              // Split with a plain string pattern; Metaspace replacement
  SplitBehavior behavior = SplitBehavior::Isolated;
  bool invert = false;
  bool add_prefix_space = false;    // ByteLevel
  int prepend = 2;                  // Metaspace: 0 never, 1 first, 2 always
  bool split = true;                // Metaspace
  bool individual_digits = false;   // Digits
};

struct Decoder {
  enum Kind { ByteLevel, Metaspace, WordPiece, ByteFallback, Fuse, Strip, Replace, BpeSuffix } kind;
  std::string a, b;                 // Replace pattern/content; Metaspace replacement; WordPiece prefix; suffix
  size_t start = 0, stop = 0;       // Strip
  bool cleanup = true;              // WordPiece
  int prepend = 2;                  // Metaspace
};

struct AddedToken {
  std::string content;
  int64_t id = -1;
  bool special = false, single_word = false, lstrip = false, rstrip = false, normalized = false;
  bool match = true;  // false: never matched in text (SentencePiece control pieces such as <s>)
};

struct TemplateItem {
  bool sequence = false;  // $A / $B
  int which = 0;          // 0: A, 1: B
  std::string special;    // special token name (ids in Pipeline::template_ids)
  int64_t type_id = 0;
};

struct Tokenizer::Pipeline {
  std::string source;
  std::string source_dir;  // the directory of the Hugging Face files it came from; empty for GGUF
  std::vector<Normalizer> normalizers;
  std::vector<PreTokenizer> pre_tokenizers;
  std::vector<Decoder> decoders;

  enum ModelKind { Bpe, Unigram, WordPiece, UseLite } model = Bpe;
  std::shared_ptr<BpeModel> bpe;
  std::shared_ptr<UnigramModel> unigram;
  std::shared_ptr<UseLiteVocab> use_lite;
  std::vector<std::string> wp_vocab;
  VocabIndex wp_ids;
  std::string wp_prefix = "##";
  size_t wp_max_chars = 100;
  int64_t wp_unk = -1;
  size_t wp_max_token_bytes = 0;

  std::vector<AddedToken> added;                 // longest content first
  std::unordered_map<int64_t, size_t> added_by_id;
  bool added_first_byte[2][256] = {};            // [normalized] bytes an added token that is matched can start with
  std::vector<TemplateItem> single, pair;        // empty: no template
  std::map<std::string, std::vector<int64_t>> template_ids;
  bool trim_offsets = false;                     // ByteLevel: offsets leave out surrounding spaces
  // SentencePiece-style vocabularies whose pieces hold U+2581 only as a leading run: the model may run on
  // each stretch that starts at a U+2581 after other text (no piece can cross it), which keeps words cacheable
  bool chunk_at_space_marker = false;
  // fast paths (set by finish_pipeline): plain byte-level BPE; BERT's normalizer + pre-tokenizer + WordPiece
  bool fast_byte_level = false, fast_bert = false;
  bool fast_spm = false;  // SentencePiece's plain whitespace handling ("▁" prefix, spaces as "▁"), ids only

  int64_t bos = -1, eos = -1, pad = -1, unk = -1;
  size_t model_max_length = 0;
  bool pad_left = false;
  std::string kind;

  // model vocabulary lookups
  size_t model_vocab_size() const;
  std::string model_token(int64_t id) const;
  int64_t model_id(std::string_view t) const;
};

// Builders in tokenizer_load.cpp finish a pipeline (index added tokens, resolve special ids).
void finish_pipeline(Tokenizer::Pipeline& p);

}  // namespace kotsu
