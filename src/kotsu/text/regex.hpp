// kotsu/text/regex: Unicode regular expressions for pre-tokenizers (GPT-2, Llama-3, Qwen and the Split
// pre-tokenizer of tokenizer.json), on PCRE2 with its JIT. Invalid UTF-8 never matches and never fails:
// the bytes around it fall into the gaps between matches, so every byte of the input is accounted for.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kotsu {

class Regex {
 public:
  // Throws kotsu::Error(source, field, PCRE2's message and offset) when the pattern does not compile.
  Regex(const std::string& pattern, const std::string& source, const std::string& field);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Byte spans [begin, end) of the successive non-empty matches in `text`.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;
  const std::string& pattern() const { return pattern_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string pattern_;
};

// The pre-tokenizer patterns of the well-known byte-level BPE families (as Hugging Face writes them).
extern const char* const kGpt2Pattern;
extern const char* const kLlama3Pattern;
extern const char* const kQwen2Pattern;

// What Split does with the matched delimiters (tokenizers' SplitDelimiterBehavior).
enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

// Splits [0, n) into pieces given the delimiter matches (sorted, non-overlapping); empty pieces are dropped.
std::vector<std::pair<size_t, size_t>> split_spans(size_t n, const std::vector<std::pair<size_t, size_t>>& matches,
                                                   SplitBehavior behavior);

}  // namespace kotsu
