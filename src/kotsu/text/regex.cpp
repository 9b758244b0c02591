#include "kotsu/text/regex.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "kotsu/core/error.hpp"

namespace kotsu {

const char* const kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const char* const kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

struct Regex::Impl {
  pcre2_code* code = nullptr;
  pcre2_match_context* limits = nullptr;  // bounds backtracking, so a hostile pattern fails instead of running on
  std::string source, field;               // where the pattern came from, for errors at match time
  ~Impl() {
    if (limits) pcre2_match_context_free(limits);
    if (code) pcre2_code_free(code);
  }
};

Regex::Regex(const std::string& pattern, const std::string& source, const std::string& field)
    : impl_(std::make_unique<Impl>()), pattern_(pattern) {
  int err = 0;
  PCRE2_SIZE off = 0;
  impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                              PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &off, nullptr);
  if (!impl_->code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    throw Error(source, field, "bad regular expression at offset " + std::to_string(off) + ": " +
                                   reinterpret_cast<const char*>(msg));
  }
  pcre2_jit_compile(impl_->code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter when JIT is unavailable
  impl_->source = source;
  impl_->field = field;
  impl_->limits = pcre2_match_context_create(nullptr);
  if (!impl_->limits) throw Error(source, field, "out of memory compiling the regular expression");
  pcre2_set_match_limit(impl_->limits, 10'000'000);
  pcre2_set_depth_limit(impl_->limits, 100'000);
  // a pattern that cannot match ordinary text without failing ((?R), runaway recursion) is refused on load,
  // naming its file, rather than at the first text that reaches it
  for (const char* probe : {"", "a", "Hello, world! 123 \xc3\xa9t\xc3\xa9\n  x"}) find_all(probe);
}

Regex::~Regex() = default;

std::vector<std::pair<size_t, size_t>> Regex::find_all(std::string_view text) const {
  std::vector<std::pair<size_t, size_t>> out;
  // one match-data block per thread, grown on demand, so concurrent encodes share the compiled pattern
  thread_local pcre2_match_data* md = pcre2_match_data_create(4, nullptr);
  const auto* s = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  while (pos < text.size()) {
    int rc = pcre2_match(impl_->code, s, text.size(), pos, pos == 0 ? 0 : PCRE2_NOTBOL, md, impl_->limits);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      throw Error(impl_->source, impl_->field,
                  "regular expression " + pattern_ + " failed on a text of " + std::to_string(text.size()) + " bytes: " +
                      reinterpret_cast<const char*>(msg));
    }
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    size_t b = ov[0], e = ov[1];
    if (e == b) {  // empty match: step over one character (or one invalid byte)
      size_t step = 1;
      while (pos + step < text.size() && (static_cast<unsigned char>(text[pos + step]) & 0xC0) == 0x80 && step < 4) ++step;
      pos = b + step;
      continue;
    }
    out.emplace_back(b, e);
    pos = e;
  }
  return out;
}

std::vector<std::pair<size_t, size_t>> split_spans(size_t n, const std::vector<std::pair<size_t, size_t>>& matches,
                                                   SplitBehavior behavior) {
  // pieces as (begin, end, is_delimiter), gaps included
  struct P {
    size_t b, e;
    bool delim;
  };
  std::vector<P> ps;
  size_t at = 0;
  for (auto [b, e] : matches) {
    if (b > at) ps.push_back({at, b, false});
    ps.push_back({b, e, true});
    at = e;
  }
  if (at < n) ps.push_back({at, n, false});
  std::vector<std::pair<size_t, size_t>> out;
  switch (behavior) {
    case SplitBehavior::Removed:
      for (auto& p : ps)
        if (!p.delim) out.emplace_back(p.b, p.e);
      break;
    case SplitBehavior::Isolated:
      for (auto& p : ps) out.emplace_back(p.b, p.e);
      break;
    case SplitBehavior::Contiguous: {  // runs of adjacent delimiters become one piece
      bool prev = false;
      for (auto& p : ps) {
        if (p.delim && prev) out.back().second = p.e;
        else out.emplace_back(p.b, p.e);
        prev = p.delim;
      }
      break;
    }
    case SplitBehavior::MergedWithPrevious: {  // a delimiter joins the piece before it, unless that was one
      bool prev = false;
      for (auto& p : ps) {
        if (p.delim && !prev && !out.empty()) out.back().second = p.e;
        else out.emplace_back(p.b, p.e);
        prev = p.delim;
      }
      break;
    }
    case SplitBehavior::MergedWithNext: {  // a delimiter joins the piece after it, unless that is one
      std::vector<std::pair<size_t, size_t>> rev;
      bool next = false;
      for (auto it = ps.rbegin(); it != ps.rend(); ++it) {
        if (it->delim && !next && !rev.empty()) rev.back().first = it->b;
        else rev.emplace_back(it->b, it->e);
        next = it->delim;
      }
      out.assign(rev.rbegin(), rev.rend());
      break;
    }
  }
  return out;
}

}  // namespace kotsu
