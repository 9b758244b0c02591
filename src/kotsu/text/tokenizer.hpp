// kotsu/text/tokenizer: one tokenizer for every model family kotsu loads, built as Hugging Face tokenizers
// builds it: added tokens matched first, then normalizer, pre-tokenizer, subword model (BPE, Unigram,
// WordPiece, or USE-Lite's unigram variant), post-processor (special-token templates
// such as "[CLS] $A [SEP] $B [SEP]") and decoder. Sources: a model directory, tokenizer.json
// (+ tokenizer_config.json), a GGUF file's tokenizer.ggml.* keys, a SentencePiece .model, vocab.json +
// merges.txt (or GPT-2's encoder.json + vocab.bpe), a BERT vocab.txt, or USE-Lite's vocab.json.
// requires: nothing of its input text; invalid UTF-8 is carried byte by byte (byte-level BPE reproduces it).
// ensures:  offsets are byte ranges of the text each token came from, whole characters (a byte-level token of
//           some of a character's UTF-8 bytes covers all of them, as the tokenizers library's offsets do); loaders refuse malformed files
//           with kotsu::Error naming the file and field.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kotsu {

struct TokenizedText {
  std::vector<int64_t> ids;
  std::vector<int64_t> type_ids;
  std::vector<int64_t> attention_mask;  // 1 for tokens, 0 for padding
  std::vector<uint8_t> special_mask;    // 1 for special tokens added by the template (and padding)
  std::vector<int8_t> sequence;         // 0: first text, 1: second text, -1: added by the template or padding
  std::vector<std::pair<size_t, size_t>> offsets;  // byte range in the text of `sequence`; (0, 0) when none
  size_t size() const { return ids.size(); }
};

enum class Truncation { LongestFirst, OnlyFirst, OnlySecond };

struct EncodeOptions {
  bool add_special = true;  // apply the post-processor's template (BOS, [CLS] ... [SEP])
  size_t max_length = 0;    // 0: no truncation; else tokens in all, special ones included
  Truncation truncation = Truncation::LongestFirst;
  bool pad = false;         // pad to pad_to, or (pad_to 0) to the longest in the batch
  size_t pad_to = 0;
  std::optional<bool> pad_left;  // unset: the tokenizer's padding_side (tokenizer_config.json), else right
};

class Tokenizer {
 public:
  struct Pipeline;

  // A directory (tokenizer.json, tokenizer.model, vocab.json + merges.txt or vocab.txt), or a file:
  // tokenizer.json, *.gguf, *.model, vocab.txt, vocab.json / encoder.json (merges beside it).
  static Tokenizer load(const std::string& path);
  static Tokenizer from_tokenizer_json(const std::string& path, const std::string& config_path = "");
  static Tokenizer from_gguf(const std::string& path);
  static Tokenizer from_sentencepiece(const std::string& path);
  static Tokenizer from_vocab_merges(const std::string& vocab_json, const std::string& merges_txt);
  static Tokenizer from_vocab_txt(const std::string& path, const std::string& config_path = "");
  // Universal Sentence Encoder Lite's vocab.json ([piece, score] pairs) as its TF.js package tokenizes.
  static Tokenizer from_use_lite_vocab(const std::string& path);

  // Token ids of `text` without special tokens (the fast path for bulk work).
  std::vector<int64_t> encode_ids(std::string_view text) const;
  TokenizedText encode(std::string_view text, const EncodeOptions& o = {}) const;
  TokenizedText encode_pair(std::string_view a, std::string_view b, const EncodeOptions& o = {}) const;
  // Encodes every text (pairs when `second` is non-empty) and pads to a common length when o.pad.
  std::vector<TokenizedText> encode_batch(const std::vector<std::string>& texts, const EncodeOptions& o,
                                          const std::vector<std::string>& second = {}) const;
  std::string decode(const std::vector<int64_t>& ids, bool skip_special = true) const;

  size_t vocab_size() const;
  std::string token(int64_t id) const;  // "" for an id outside the vocabulary
  int64_t id_of(std::string_view token) const;  // -1 when absent
  bool is_special(int64_t id) const;
  int64_t bos_id() const;
  int64_t eos_id() const;
  int64_t pad_id() const;  // falls back to eos, then 0, when the tokenizer names no pad token
  int64_t unk_id() const;
  size_t model_max_length() const;  // 0 when unknown
  std::string describe() const;     // e.g. "BPE (byte-level), 50257 tokens, from gpt2.gguf"
  // Copies the tokenizer files it was loaded from (tokenizer.json, tokenizer_config.json, vocab files,
  // tokenizer.model, special_tokens_map.json) into `dir`, atomically, so `dir` loads the same tokenizer.
  // A tokenizer read from a GGUF file has no such files: refused with kotsu::Error.
  void save(const std::string& dir) const;
  // The same tokenizer without its fast paths (plain byte-level BPE, BERT on ASCII): tests check that
  // both give identical results.
  Tokenizer general_path_only() const;

 private:
  explicit Tokenizer(std::shared_ptr<const Pipeline> p) : p_(std::move(p)) {}
  std::shared_ptr<const Pipeline> p_;
};

}  // namespace kotsu
