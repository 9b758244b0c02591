// Pre-tokenizers and added-token splitting of the Tokenizer pipeline (see tokenizer_text.hpp).
#include <utf8proc.h>

#include <algorithm>
#include <cstring>

#include "kotsu/core/error.hpp"
#include "kotsu/text/byte_level.hpp"
#include "kotsu/text/tokenizer_text.hpp"
#include "kotsu/text/unicode.hpp"
#include "kotsu/text/utf8.hpp"

namespace kotsu::tok {

void split_piece(const Piece& p, const std::vector<std::pair<size_t, size_t>>& spans, std::vector<Piece>& out) {
  if (spans.size() == 1 && spans[0].first == 0 && spans[0].second == p.text.size()) {
    out.push_back(p);
    return;
  }
  for (auto [b, e] : spans) out.push_back(p.slice(b, e));
}

// Matches of characters for which pred holds, one per character (or per run when `runs`).
template <class Pred>
std::vector<std::pair<size_t, size_t>> char_matches(std::string_view s, Pred pred, bool runs) {
  std::vector<std::pair<size_t, size_t>> m;
  size_t n;
  for (size_t i = 0; i < s.size(); i += n) {
    int32_t c = char_at(s, i, n);
    if (c >= 0 && pred(static_cast<char32_t>(c))) {
      if (runs && !m.empty() && m.back().second == i) m.back().second = i + n;
      else m.emplace_back(i, i + n);
    }
  }
  return m;
}

std::vector<std::pair<size_t, size_t>> invert(size_t n, const std::vector<std::pair<size_t, size_t>>& m) {
  std::vector<std::pair<size_t, size_t>> out;
  size_t at = 0;
  for (auto [b, e] : m) {
    if (b > at) out.emplace_back(at, b);
    at = e;
  }
  if (at < n) out.emplace_back(at, n);
  return out;
}

void pre_tokenize(const P& pl, std::vector<Piece>& pieces) {
  std::vector<Piece> next;
  for (const auto& t : pl.pre_tokenizers) {
    next.clear();
    for (auto& p : pieces) {
      switch (t.kind) {
        case PreTokenizer::ByteLevel:
          if (t.add_prefix_space && (p.text.empty() || p.text[0] != ' ')) prepend(p, " ");
          if (t.re) split_piece(p, split_spans(p.text.size(), t.re->find_all(p.text), SplitBehavior::Isolated), next);
          else next.push_back(std::move(p));
          break;
        case PreTokenizer::Split: {
          auto m = t.re ? t.re->find_all(p.text) : find_literal(p.text, t.literal);
          if (t.invert) m = invert(p.text.size(), m);
          split_piece(p, split_spans(p.text.size(), m, t.behavior), next);
          break;
        }
        case PreTokenizer::Whitespace: {  // \w+|[^\w\s]+ kept, the rest removed
          auto word = [](char32_t c) {
            auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
            return c == '_' || (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_ND) || cat == UTF8PROC_CATEGORY_NL ||
                   cat == UTF8PROC_CATEGORY_NO || cat == UTF8PROC_CATEGORY_PC;
          };
          std::vector<std::pair<size_t, size_t>> m;
          size_t n;
          int prev = 0;  // 1 word run, 2 symbol run
          for (size_t i = 0; i < p.text.size(); i += n) {
            int32_t c = char_at(p.text, i, n);
            int k = c < 0 ? 2 : is_whitespace(static_cast<char32_t>(c)) ? 0 : word(static_cast<char32_t>(c)) ? 1 : 2;
            if (k != 0 && k == prev) m.back().second = i + n;
            else if (k != 0) m.emplace_back(i, i + n);
            prev = k;
          }
          split_piece(p, m, next);
          break;
        }
        case PreTokenizer::WhitespaceSplit:
          split_piece(p, invert(p.text.size(), char_matches(p.text, is_whitespace, true)), next);
          break;
        case PreTokenizer::Bert: {
          auto ws = char_matches(p.text, is_whitespace, true);
          std::vector<Piece> words;
          split_piece(p, invert(p.text.size(), ws), words);
          for (auto& w : words)
            split_piece(w, split_spans(w.text.size(), char_matches(w.text, is_punctuation, false), SplitBehavior::Isolated), next);
          break;
        }
        case PreTokenizer::Metaspace: {
          replace_ranges(p, find_literal(p.text, " "), t.literal);
          bool first = p.text.empty() || p.orig(0).first == 0;
          if (!p.text.empty() && p.text.rfind(t.literal, 0) != 0 && (t.prepend == 2 || (t.prepend == 1 && first)))
            prepend(p, t.literal);
          if (t.split) split_piece(p, split_spans(p.text.size(), find_literal(p.text, t.literal), SplitBehavior::MergedWithNext), next);
          else next.push_back(std::move(p));
          break;
        }
        case PreTokenizer::Digits: {
          // the tokenizers library's char::is_numeric: every number category (Nd, Nl, No: "½", "Ⅻ", "²" too)
          auto m = char_matches(p.text, [](char32_t c) {
                                  const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
                                  return cat == UTF8PROC_CATEGORY_ND || cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_NO;
                                },
                                !t.individual_digits);
          split_piece(p, split_spans(p.text.size(), m, SplitBehavior::Isolated), next);
          break;
        }
        case PreTokenizer::Punctuation:
          split_piece(p, split_spans(p.text.size(), char_matches(p.text, is_punctuation, false), t.behavior), next);
          break;
      }
    }
    pieces.swap(next);
  }
}

bool is_word_char(std::string_view s, size_t i) {
  size_t n;
  int32_t c = char_at(s, i, n);
  if (c < 0) return false;
  auto cat = utf8proc_category(c);
  return c == '_' || (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_ND);
}

// Splits a piece around added tokens (those with normalized == `normalized`): pieces of text and ids.
void split_added(const P& pl, Piece p, bool normalized, std::vector<Part>& out) {
  const std::string& s = p.text;
  size_t seg = 0, i = 0;
  const bool* first = pl.added_first_byte[normalized ? 1 : 0];
  while (i < s.size()) {
    if (!first[static_cast<unsigned char>(s[i])]) {
      ++i;
      continue;
    }
    const AddedToken* hit = nullptr;
    for (const auto& a : pl.added) {
      if (!a.match || a.normalized != normalized || a.content.empty() || a.content[0] != s[i]) continue;
      if (s.compare(i, a.content.size(), a.content) != 0) continue;
      size_t e = i + a.content.size();
      if (a.single_word && ((i > 0 && is_word_char(s, i - 1)) || (e < s.size() && is_word_char(s, e)))) continue;
      hit = &a;
      break;  // longest first
    }
    if (!hit) {
      ++i;
      continue;
    }
    size_t b = i, e = i + hit->content.size();
    if (hit->lstrip)
      while (b > seg && (s[b - 1] == ' ' || s[b - 1] == '\t' || s[b - 1] == '\n' || s[b - 1] == '\r')) --b;
    if (hit->rstrip)
      while (e < s.size() && (s[e] == ' ' || s[e] == '\t' || s[e] == '\n' || s[e] == '\r')) ++e;
    if (b > seg) out.push_back({p.slice(seg, b), -1});
    out.push_back({p.slice(b, e), hit->id});
    seg = i = e;
  }
  if (seg < s.size() || out.empty()) out.push_back({p.slice(seg, s.size()), -1});
}


}  // namespace kotsu::tok
