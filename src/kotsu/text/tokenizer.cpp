#include "kotsu/text/tokenizer.hpp"

#include <utf8proc.h>

#include <algorithm>
#include <cstring>

#include "kotsu/core/error.hpp"
#include "kotsu/text/byte_level.hpp"
#include "kotsu/text/tokenizer_pipeline.hpp"
#include "kotsu/text/unicode.hpp"
#include "kotsu/text/utf8.hpp"

namespace kotsu {

using P = Tokenizer::Pipeline;

namespace {

// A stretch of (normalized) text with the original byte range of each of its bytes.
// Slices share the alignment array, so splitting a normalized text into words allocates none.
struct Piece {
  std::string text;
  std::shared_ptr<const std::vector<Span>> al;  // null: byte i is original byte off + i
  size_t at = 0;                                // al index of byte 0
  uint32_t off = 0;
  Span orig(size_t i) const {
    return al ? (*al)[at + i] : Span{off + static_cast<uint32_t>(i), off + static_cast<uint32_t>(i) + 1};
  }
  Piece slice(size_t b, size_t e) const {
    Piece s;
    s.text = text.substr(b, e - b);
    s.al = al;
    s.at = at + b;
    s.off = off + static_cast<uint32_t>(b);
    return s;
  }
  void set(std::string t, std::vector<Span> a) {
    text = std::move(t);
    al = std::make_shared<const std::vector<Span>>(std::move(a));
    at = 0;
  }
  // the original range covered by bytes [b, e)
  Span range(size_t b, size_t e) const { return {orig(b).first, orig(e - 1).second}; }
};

// Decodes the character at i: its code point (-1 for an invalid byte) and byte length.
int32_t char_at(std::string_view s, size_t i, size_t& n) {
  utf8proc_int32_t cp;
  auto k = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + i), static_cast<utf8proc_ssize_t>(s.size() - i), &cp);
  if (k <= 0) {
    n = 1;
    return -1;
  }
  n = static_cast<size_t>(k);
  return cp;
}

// Rewrites every character through f(cp, out); invalid bytes pass unchanged. Output bytes map to the
// original range of the character they came from.
template <class F>
void map_chars(Piece& p, F f) {
  std::string out;
  std::vector<Span> al;
  out.reserve(p.text.size());
  al.reserve(p.text.size());
  std::vector<char32_t> buf;
  bool same_layout = true;  // every character kept its byte length: the alignment carries over unchanged
  for (size_t i = 0; i < p.text.size();) {
    size_t n;
    int32_t cp = char_at(p.text, i, n);
    Span sp = p.range(i, i + n);
    if (cp < 0) {
      out.push_back(p.text[i]);
      al.push_back(sp);
    } else {
      buf.clear();
      f(static_cast<char32_t>(cp), buf);
      size_t start = out.size();
      for (char32_t c : buf) {
        size_t before = out.size();
        utf8_append(out, c);
        al.insert(al.end(), out.size() - before, sp);
      }
      if (out.size() - start != n || (n > 1 && buf.size() != 1)) same_layout = false;
    }
    i += n;
  }
  if (out == p.text) return;  // unchanged: keep the cheaper alignment
  if (same_layout) p.text = std::move(out);
  else p.set(std::move(out), std::move(al));
}

// Unicode normal forms, grapheme by grapheme (composition never crosses a grapheme boundary).
void normal_form(Piece& p, int flags) {
  if (std::all_of(p.text.begin(), p.text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; })) return;
  std::string out;
  std::vector<Span> al;
  size_t i = 0;
  while (i < p.text.size()) {
    size_t n;
    int32_t cp = char_at(p.text, i, n);
    size_t e = i + n;
    if (cp >= 0) {  // extend to the end of the grapheme
      utf8proc_int32_t state = 0;
      int32_t prev = cp;
      while (e < p.text.size()) {
        size_t m;
        int32_t c = char_at(p.text, e, m);
        if (c < 0 || utf8proc_grapheme_break_stateful(prev, c, &state)) break;
        prev = c;
        e += m;
      }
      utf8proc_uint8_t* mapped = nullptr;
      auto len = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(p.text.data() + i), static_cast<utf8proc_ssize_t>(e - i),
                              &mapped, static_cast<utf8proc_option_t>(flags));
      Span sp = p.range(i, e);
      if (len >= 0) {
        out.append(reinterpret_cast<const char*>(mapped), static_cast<size_t>(len));
        al.insert(al.end(), static_cast<size_t>(len), sp);
      } else {
        out.append(p.text, i, e - i);
        al.insert(al.end(), e - i, sp);
      }
      std::free(mapped);
    } else {
      out.push_back(p.text[i]);
      al.push_back(p.orig(i));
    }
    i = e;
  }
  if (out == p.text) return;
  p.set(std::move(out), std::move(al));
}

// Replaces the byte ranges `hits` with `content`; the replacement maps to the range it replaced.
void replace_ranges(Piece& p, const std::vector<std::pair<size_t, size_t>>& hits, const std::string& content) {
  if (hits.empty()) return;
  std::string out;
  std::vector<Span> al;
  size_t at = 0;
  for (auto [b, e] : hits) {
    for (size_t k = at; k < b; ++k) {
      out.push_back(p.text[k]);
      al.push_back(p.orig(k));
    }
    Span sp = b < e ? p.range(b, e) : Span{p.orig(std::min(b, p.text.size() - 1)).first, p.orig(std::min(b, p.text.size() - 1)).first};
    out += content;
    al.insert(al.end(), content.size(), sp);
    at = e;
  }
  for (size_t k = at; k < p.text.size(); ++k) {
    out.push_back(p.text[k]);
    al.push_back(p.orig(k));
  }
  p.set(std::move(out), std::move(al));
}

std::vector<std::pair<size_t, size_t>> find_literal(std::string_view text, std::string_view pat) {
  std::vector<std::pair<size_t, size_t>> hits;
  if (pat.empty()) return hits;
  for (size_t at = text.find(pat); at != std::string_view::npos; at = text.find(pat, at + pat.size()))
    hits.emplace_back(at, at + pat.size());
  return hits;
}

void prepend(Piece& p, const std::string& s) {
  uint32_t at = p.text.empty() ? p.off : p.orig(0).first;
  std::vector<Span> al(s.size(), Span{at, at});
  al.reserve(s.size() + p.text.size());
  for (size_t i = 0; i < p.text.size(); ++i) al.push_back(p.orig(i));
  p.set(s + p.text, std::move(al));
}

void strip(Piece& p, bool left, bool right) {
  size_t b = 0, e = p.text.size(), n;
  if (left)
    while (b < e) {
      int32_t c = char_at(p.text, b, n);
      if (c < 0 || !is_whitespace(static_cast<char32_t>(c))) break;
      b += n;
    }
  if (right)
    while (e > b) {
      size_t s = e - 1;
      while (s > b && (static_cast<unsigned char>(p.text[s]) & 0xC0) == 0x80) --s;
      int32_t c = char_at(p.text, s, n);
      if (c < 0 || !is_whitespace(static_cast<char32_t>(c))) break;
      e = s;
    }
  if (b != 0 || e != p.text.size()) p = p.slice(b, e);
}

// SentencePiece's normalizer (normalizer.cc): charsmap rules by longest prefix; optionally leading, trailing
// and repeated spaces removed, a dummy-prefix space, spaces escaped as U+2581.
void spm_normalize(Piece& p, const Normalizer& n) {
  static const std::string kSpace = "\xE2\x96\x81";
  const std::string& s = p.text;
  auto prefix = [&](size_t at) -> std::pair<std::string_view, size_t> {
    if (n.charsmap) return n.charsmap->normalize_prefix(std::string_view(s).substr(at));
    size_t len;
    char_at(s, at, len);
    return {std::string_view(s).substr(at, len), len};
  };
  std::string out;
  std::vector<Span> al;
  size_t i = 0;
  if (n.remove_extra_whitespaces)
    while (i < s.size()) {
      auto [r, c] = prefix(i);
      if (r != " ") break;
      i += c;
    }
  if (i == s.size()) {
    p = p.slice(0, 0);
    return;
  }
  auto add = [&](std::string_view bytes, Span sp) {
    for (char ch : bytes) {
      if (n.escape_whitespaces && ch == ' ') {
        out += kSpace;
        al.insert(al.end(), kSpace.size(), sp);
      } else {
        out.push_back(ch);
        al.push_back(sp);
      }
    }
  };
  if (n.add_dummy_prefix) add(" ", Span{p.orig(i).first, p.orig(i).first});
  bool prev_space = n.remove_extra_whitespaces;
  while (i < s.size()) {
    auto [r, c] = prefix(i);
    Span sp = p.range(i, i + c);
    if (prev_space && n.remove_extra_whitespaces)
      while (!r.empty() && r[0] == ' ') r.remove_prefix(1);
    if (!r.empty()) {
      add(r, sp);
      prev_space = r.back() == ' ';
    }
    i += c;
    if (!n.remove_extra_whitespaces) prev_space = false;
  }
  if (n.remove_extra_whitespaces) {
    const std::string sp = n.escape_whitespaces ? kSpace : " ";
    while (out.size() >= sp.size() && out.compare(out.size() - sp.size(), sp.size(), sp) == 0) {
      out.resize(out.size() - sp.size());
      al.resize(out.size());
    }
  }
  p.set(std::move(out), std::move(al));
}

void normalize(const P& pl, Piece& p) {
  for (const auto& n : pl.normalizers) {
    switch (n.kind) {
      case Normalizer::NFC: normal_form(p, UTF8PROC_STABLE | UTF8PROC_COMPOSE); break;
      case Normalizer::NFD: normal_form(p, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE); break;
      case Normalizer::NFKC: normal_form(p, UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT); break;
      case Normalizer::NFKD: normal_form(p, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT); break;
      case Normalizer::Lowercase:
        map_chars(p, [](char32_t c, std::vector<char32_t>& o) { lower_into(c, o); });
        break;
      case Normalizer::StripAccents:
        map_chars(p, [](char32_t c, std::vector<char32_t>& o) {
          if (utf8proc_category(static_cast<utf8proc_int32_t>(c)) != UTF8PROC_CATEGORY_MN) o.push_back(c);
        });
        break;
      case Normalizer::Strip: strip(p, n.left, n.right); break;
      case Normalizer::Replace:
        replace_ranges(p, n.re ? n.re->find_all(p.text) : find_literal(p.text, n.a), n.b);
        break;
      case Normalizer::Prepend:
        if (!p.text.empty()) prepend(p, n.a);
        break;
      case Normalizer::SentencePiece: spm_normalize(p, n); break;
      case Normalizer::Bert: {
        const auto& o = n.bert;
        // ASCII without control characters: whitespace to spaces and lower-casing keep the layout
        if (std::all_of(p.text.begin(), p.text.end(), [](char c) {
              auto u = static_cast<unsigned char>(c);
              return u < 0x7F && (u >= 0x20 || c == '\t' || c == '\n' || c == '\r');
            })) {
          for (char& c : p.text) {
            if (o.clean_text && (c == '\t' || c == '\n' || c == '\r')) c = ' ';
            if (o.lowercase && c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
          }
          break;
        }
        const bool strip_acc = o.strip_accents.value_or(o.lowercase);
        map_chars(p, [&](char32_t c, std::vector<char32_t>& out) {
          if (c < 0x7F && (c >= 0x20 || c == '\t' || c == '\n' || c == '\r')) {  // ASCII: no accents, no CJK
            if (o.clean_text && (c == '\t' || c == '\n' || c == '\r')) c = ' ';
            if (o.lowercase && c >= 'A' && c <= 'Z') c += 32;
            out.push_back(c);
            return;
          }
          if (o.clean_text) {
            if (c == 0 || c == 0xFFFD || is_control(c)) return;
            if (is_whitespace(c)) c = ' ';
          }
          if (o.chinese_chars && is_cjk(c)) {
            out.push_back(' ');
            out.push_back(c);
            out.push_back(' ');
            return;
          }
          std::vector<char32_t> a{c}, b;
          if (strip_acc) {
            b.clear();
            for (char32_t x : a) strip_accents_into(x, b);
            a.swap(b);
          }
          if (o.lowercase) {
            b.clear();
            for (char32_t x : a) lower_into(x, b);
            a.swap(b);
          }
          out.insert(out.end(), a.begin(), a.end());
        });
        break;
      }
    }
  }
}

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
          auto m = char_matches(p.text, [](char32_t c) { return utf8proc_category(static_cast<utf8proc_int32_t>(c)) == UTF8PROC_CATEGORY_ND; },
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
struct Part {
  Piece text;
  int64_t added = -1;
};
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

struct Seq {
  std::vector<int64_t> ids;
  std::vector<std::pair<size_t, size_t>> offsets;
};

void trim_offset(std::string_view text, std::pair<size_t, size_t>& o) {
  size_t b = o.first, e = o.second;
  while (b < e && text[b] == ' ') ++b;
  while (e > b && text[e - 1] == ' ') --e;
  if (b < e) o = {b, e};
}

const std::string kSpaceMarker = "\xE2\x96\x81";

void model_run(const P& pl, std::string_view w, std::vector<int64_t>& ids, std::vector<Span>* spans) {
  switch (pl.model) {
    case P::Bpe: pl.bpe->encode(w, ids, spans); break;
    case P::Unigram: pl.unigram->encode(w, ids, spans); break;
    case P::UseLite: pl.use_lite->encode(w, ids, spans); break;
    case P::WordPiece:
      wordpiece_split(w, pl.wp_ids, pl.wp_prefix, pl.wp_max_chars, pl.wp_unk, ids, spans, pl.wp_max_token_bytes);
      break;
  }
}

// Calls f(begin, end) for each stretch of t that starts at a U+2581 following other text (and the first).
template <class F>
void for_each_marker_chunk(std::string_view t, F f) {
  size_t start = 0;
  for (size_t at = t.find(kSpaceMarker, 1); at != std::string_view::npos; at = t.find(kSpaceMarker, at + kSpaceMarker.size())) {
    if (at >= kSpaceMarker.size() && t.compare(at - kSpaceMarker.size(), kSpaceMarker.size(), kSpaceMarker) == 0) continue;
    f(start, at);
    start = at;
  }
  f(start, t.size());
}

void model_encode(const P& pl, const Piece& p, Seq& out, std::string_view original, bool offsets) {
  std::vector<Span> spans;
  std::vector<int64_t>& ids = out.ids;
  if (pl.chunk_at_space_marker) {  // no piece crosses these chunks: each is encoded (and cached) alone
    std::string_view t = p.text;
    for_each_marker_chunk(t, [&](size_t b, size_t e) {
      size_t mark = spans.size();
      model_run(pl, t.substr(b, e - b), ids, offsets ? &spans : nullptr);
      for (size_t k = mark; k < spans.size(); ++k) spans[k] = {spans[k].first + b, spans[k].second + b};
    });
  } else {
    model_run(pl, p.text, ids, offsets ? &spans : nullptr);
  }
  if (!offsets) return;
  for (size_t k = 0; k < spans.size(); ++k) {
    auto [b, e] = spans[k];
    std::pair<size_t, size_t> o{0, 0};
    if (e > b && e <= p.text.size()) {
      Span r = p.range(b, e);
      o = {r.first, r.second};
    } else if (!p.text.empty()) {
      o = {p.orig(std::min<size_t>(b, p.text.size() - 1)).first, p.orig(std::min<size_t>(b, p.text.size() - 1)).first};
    }
    if (pl.trim_offsets) trim_offset(original, o);
    out.offsets.push_back(o);
  }
}

// The common pipelines on text that needs no alignment bookkeeping, without building pieces:
// byte-level BPE (no normalizer, one regex ByteLevel pre-tokenizer) and BERT on ASCII text. Same
// results as the general path (the tokenizer tests run both); returns false when it does not apply.
bool fast_path(const P& pl, std::string_view t, uint32_t base, Seq& out, std::string_view original, bool offsets) {
  auto emit_offsets = [&](const std::vector<Span>& sp, size_t from, size_t at) {
    for (size_t k = from; k < sp.size(); ++k) {
      std::pair<size_t, size_t> o{base + at + sp[k].first, base + at + sp[k].second};
      if (pl.trim_offsets) trim_offset(original, o);
      out.offsets.push_back(o);
    }
  };
  std::vector<Span> sp;
  if (pl.fast_spm && !offsets) {  // ids only: "▁" + text with spaces as "▁", then the chunks
    if (t.empty()) return true;
    std::string norm = kSpaceMarker;
    norm.reserve(t.size() + 16);
    for (char c : t) {
      if (c == ' ') norm += kSpaceMarker;
      else norm.push_back(c);
    }
    std::string_view nv = norm;
    for_each_marker_chunk(nv, [&](size_t b, size_t e) { model_run(pl, nv.substr(b, e - b), out.ids, nullptr); });
    return true;
  }
  if (pl.fast_byte_level) {
    auto run = [&](size_t b, size_t e) {
      size_t mark = sp.size();
      pl.bpe->encode(t.substr(b, e - b), out.ids, offsets ? &sp : nullptr);
      if (offsets) emit_offsets(sp, mark, b);
    };
    size_t at = 0;
    for (auto [b, e] : pl.pre_tokenizers[0].re->find_all(t)) {
      if (b > at) run(at, b);
      run(b, e);
      at = e;
    }
    if (at < t.size()) run(at, t.size());
    return true;
  }
  if (pl.fast_bert) {  // chunk at ASCII whitespace (BERT's normalizer is per character); plain-ASCII chunks go fast
    const WordPieceOptions& o = pl.normalizers[0].bert;
    auto punct = [](char c) { return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126); };
    std::string low;
    auto run = [&](size_t b, size_t e) {
      size_t mark = sp.size();
      wordpiece_split(std::string_view(low).substr(b, e - b), pl.wp_ids, pl.wp_prefix, pl.wp_max_chars, pl.wp_unk, out.ids,
                      offsets ? &sp : nullptr, pl.wp_max_token_bytes);
      if (offsets) emit_offsets(sp, mark, b);
    };
    low.assign(t);
    auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
    std::vector<Piece> pieces;
    for (size_t i = 0; i < t.size();) {
      while (i < t.size() && space(t[i])) ++i;
      size_t e = i;
      bool plain = true;
      while (e < t.size() && !space(t[e])) {
        auto u = static_cast<unsigned char>(t[e]);
        plain = plain && u >= 0x20 && u < 0x7F;
        ++e;
      }
      if (e == i) break;
      if (!plain) {  // the general pipeline on this chunk
        Piece chunk;
        chunk.text.assign(t.substr(i, e - i));
        chunk.off = base + static_cast<uint32_t>(i);
        normalize(pl, chunk);
        pieces.clear();
        pieces.push_back(std::move(chunk));
        pre_tokenize(pl, pieces);
        for (const auto& p : pieces)
          if (!p.text.empty()) model_encode(pl, p, out, original, offsets);
        i = e;
        continue;
      }
      if (o.lowercase)
        for (size_t k = i; k < e; ++k)
          if (low[k] >= 'A' && low[k] <= 'Z') low[k] = static_cast<char>(low[k] + 32);
      size_t word = i;
      for (size_t k = i; k < e; ++k)
        if (punct(low[k])) {
          if (k > word) run(word, k);
          run(k, k + 1);
          word = k + 1;
        }
      if (e > word) run(word, e);
      i = e;
    }
    return true;
  }
  return false;
}

Seq encode_seq(const P& pl, std::string_view text, bool offsets = true) {
  Seq out;
  Piece whole;
  whole.text.assign(text);
  std::vector<Part> raw;
  if (pl.added.empty()) raw.push_back({std::move(whole), -1});
  else split_added(pl, std::move(whole), false, raw);
  std::vector<Piece> pieces;
  for (auto& part : raw) {
    if (part.added >= 0) {
      out.ids.push_back(part.added);
      Span r = part.text.text.empty() ? Span{0, 0} : part.text.range(0, part.text.text.size());
      out.offsets.emplace_back(r.first, r.second);
      continue;
    }
    if (!part.text.al && fast_path(pl, part.text.text, part.text.off, out, text, offsets)) continue;
    normalize(pl, part.text);
    std::vector<Part> norm;
    if (pl.added.empty()) norm.push_back({std::move(part.text), -1});
    else split_added(pl, std::move(part.text), true, norm);
    for (auto& np : norm) {
      if (np.added >= 0) {
        out.ids.push_back(np.added);
        Span r = np.text.range(0, np.text.text.size());
        out.offsets.emplace_back(r.first, r.second);
        continue;
      }
      pieces.clear();
      pieces.push_back(std::move(np.text));
      pre_tokenize(pl, pieces);
      for (const auto& p : pieces)
        if (!p.text.empty()) model_encode(pl, p, out, text, offsets);
    }
  }
  return out;
}

size_t template_specials(const std::vector<TemplateItem>& t, const P& pl) {
  size_t n = 0;
  for (const auto& it : t)
    if (!it.sequence) n += pl.template_ids.at(it.special).size();
  return n;
}

void truncate(Seq& a, Seq* b, size_t budget, Truncation how, const std::string& source) {
  auto cut = [](Seq& s, size_t n) {
    s.ids.resize(n);
    s.offsets.resize(n);
  };
  size_t na = a.ids.size(), nb = b ? b->ids.size() : 0;
  if (na + nb <= budget) return;
  if (!b || how == Truncation::OnlyFirst) {
    size_t keep = budget > nb ? budget - nb : 0;
    if (b && nb > budget) throw Error(source, "truncation", "the second sequence alone exceeds max_length with only_first");
    cut(a, std::min(na, keep));
  } else if (how == Truncation::OnlySecond) {
    if (na > budget) throw Error(source, "truncation", "the first sequence alone exceeds max_length with only_second");
    cut(*b, budget - na);
  } else {  // longest first, one token at a time (ties: the second loses first, as in tokenizers)
    while (na + nb > budget) {
      if (na > nb) --na;
      else --nb;
    }
    cut(a, na);
    cut(*b, nb);
  }
}

TokenizedText assemble(const P& pl, Seq a, Seq* b, const EncodeOptions& o) {
  const auto& tmpl = b ? pl.pair : pl.single;
  const bool use_template = o.add_special && !tmpl.empty();
  if (o.max_length > 0) {
    size_t specials = use_template ? template_specials(tmpl, pl) : 0;
    size_t budget = o.max_length > specials ? o.max_length - specials : 0;
    truncate(a, b, budget, o.truncation, pl.source);
  }
  TokenizedText t;
  auto add = [&](int64_t id, int64_t type, int8_t seq, std::pair<size_t, size_t> off, bool special) {
    t.ids.push_back(id);
    t.type_ids.push_back(type);
    t.attention_mask.push_back(1);
    t.special_mask.push_back(special ? 1 : 0);
    t.sequence.push_back(seq);
    t.offsets.push_back(off);
  };
  auto add_seq = [&](const Seq& s, int64_t type, int8_t which) {
    for (size_t k = 0; k < s.ids.size(); ++k) add(s.ids[k], type, which, s.offsets[k], false);
  };
  if (!use_template) {
    add_seq(a, 0, 0);
    if (b) add_seq(*b, 1, 1);
    return t;
  }
  for (const auto& it : tmpl) {
    if (it.sequence) {
      if (it.which == 0) add_seq(a, it.type_id, 0);
      else if (b) add_seq(*b, it.type_id, 1);
    } else {
      for (int64_t id : pl.template_ids.at(it.special)) add(id, it.type_id, -1, {0, 0}, true);
    }
  }
  return t;
}

void pad_to(const P& pl, TokenizedText& t, size_t len, bool left) {
  if (t.size() >= len) return;
  size_t n = len - t.size();
  int64_t pad = pl.pad >= 0 ? pl.pad : pl.eos >= 0 ? pl.eos : 0;
  auto ins = [&](auto& v, auto val) {
    if (left) v.insert(v.begin(), n, val);
    else v.insert(v.end(), n, val);
  };
  ins(t.ids, pad);
  ins(t.type_ids, int64_t(0));
  ins(t.attention_mask, int64_t(0));
  ins(t.special_mask, uint8_t(1));
  ins(t.sequence, int8_t(-1));
  ins(t.offsets, std::pair<size_t, size_t>{0, 0});
}

// --- decoding ---

bool byte_token(const std::string& t, unsigned char& b) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return false;
  auto hex = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; };
  int h = hex(t[3]), l = hex(t[4]);
  if (h < 0 || l < 0) return false;
  b = static_cast<unsigned char>(h * 16 + l);
  return true;
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return;
  std::string out;
  size_t at = 0;
  for (size_t f = s.find(from); f != std::string::npos; f = s.find(from, at)) {
    out.append(s, at, f - at);
    out += to;
    at = f + from.size();
  }
  out.append(s, at, std::string::npos);
  s.swap(out);
}

void wordpiece_cleanup(std::string& s) {
  static const std::pair<const char*, const char*> rules[] = {
      {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
      {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (auto [a, b] : rules) replace_all(s, a, b);
}

std::vector<std::string> run_decoders(const P& pl, std::vector<std::string> toks) {
  for (const auto& d : pl.decoders) {
    std::vector<std::string> out;
    switch (d.kind) {
      case Decoder::ByteLevel: {
        std::string joined;
        for (auto& t : toks) byte_level_decode(t, joined);
        out.push_back(std::move(joined));
        break;
      }
      case Decoder::ByteFallback: {
        std::string bytes;
        auto flush = [&] {
          if (bytes.empty()) return;
          if (utf8_invalid_at(bytes) == std::string::npos) out.push_back(bytes);
          else
            for (size_t k = 0; k < bytes.size(); ++k) out.push_back("\xEF\xBF\xBD");
          bytes.clear();
        };
        for (auto& t : toks) {
          unsigned char b;
          if (byte_token(t, b)) {
            bytes.push_back(static_cast<char>(b));
          } else {
            flush();
            out.push_back(t);
          }
        }
        flush();
        break;
      }
      case Decoder::Fuse: {
        std::string joined;
        for (auto& t : toks) joined += t;
        out.push_back(std::move(joined));
        break;
      }
      case Decoder::Strip:
        for (auto& t : toks) {
          size_t b = 0, e = t.size();
          for (size_t k = 0; k < d.start && b < e && t.compare(b, d.a.size(), d.a) == 0; ++k) b += d.a.size();
          for (size_t k = 0; k < d.stop && e >= b + d.a.size() && t.compare(e - d.a.size(), d.a.size(), d.a) == 0; ++k) e -= d.a.size();
          out.push_back(t.substr(b, e - b));
        }
        break;
      case Decoder::Replace:
        for (auto& t : toks) {
          replace_all(t, d.a, d.b);
          out.push_back(std::move(t));
        }
        break;
      case Decoder::Metaspace:
        for (size_t k = 0; k < toks.size(); ++k) {
          std::string t = toks[k];
          replace_all(t, d.a, " ");
          if (k == 0 && d.prepend != 0 && !t.empty() && t[0] == ' ') t.erase(0, 1);
          out.push_back(std::move(t));
        }
        break;
      case Decoder::WordPiece:
        for (size_t k = 0; k < toks.size(); ++k) {
          std::string t = toks[k];
          if (k != 0) {
            if (t.rfind(d.a, 0) == 0) t.erase(0, d.a.size());
            else t.insert(0, " ");
          }
          if (d.cleanup) wordpiece_cleanup(t);
          out.push_back(std::move(t));
        }
        break;
      case Decoder::BpeSuffix:
        for (size_t k = 0; k < toks.size(); ++k) {
          std::string t = toks[k];
          replace_all(t, d.a, k + 1 == toks.size() ? "" : " ");
          out.push_back(std::move(t));
        }
        break;
    }
    toks.swap(out);
  }
  return toks;
}

}  // namespace

// --- Pipeline vocabulary ---

size_t P::model_vocab_size() const {
  switch (model) {
    case Bpe: return bpe->vocab_size();
    case Unigram: return unigram->vocab_size();
    case UseLite: return use_lite->vocab_size();
    case WordPiece: return wp_vocab.size();
  }
  return 0;
}

std::string P::model_token(int64_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= model_vocab_size()) return "";
  switch (model) {
    case Bpe: return bpe->token(id);
    case Unigram: return unigram->token(id);
    case UseLite: return use_lite->token(id);
    case WordPiece: return wp_vocab[static_cast<size_t>(id)];
  }
  return "";
}

int64_t P::model_id(std::string_view t) const {
  switch (model) {
    case Bpe: return bpe->id_of(t);
    case Unigram: return unigram->id_of(t);
    case UseLite: return use_lite->id_of(t);
    case WordPiece: {
      return wp_ids.find(t);
    }
  }
  return -1;
}

// --- Tokenizer ---

std::vector<int64_t> Tokenizer::encode_ids(std::string_view text) const { return encode_seq(*p_, text, false).ids; }

TokenizedText Tokenizer::encode(std::string_view text, const EncodeOptions& o) const {
  TokenizedText t = assemble(*p_, encode_seq(*p_, text), nullptr, o);
  if (o.pad && o.pad_to > 0) pad_to(*p_, t, o.pad_to, o.pad_left.value_or(p_->pad_left));
  return t;
}

TokenizedText Tokenizer::encode_pair(std::string_view a, std::string_view b, const EncodeOptions& o) const {
  Seq sb = encode_seq(*p_, b);
  TokenizedText t = assemble(*p_, encode_seq(*p_, a), &sb, o);
  if (o.pad && o.pad_to > 0) pad_to(*p_, t, o.pad_to, o.pad_left.value_or(p_->pad_left));
  return t;
}

std::vector<TokenizedText> Tokenizer::encode_batch(const std::vector<std::string>& texts, const EncodeOptions& o,
                                                   const std::vector<std::string>& second) const {
  if (!second.empty() && second.size() != texts.size())
    throw Error(p_->source, "encode_batch", std::to_string(texts.size()) + " first texts but " + std::to_string(second.size()) + " second");
  std::vector<TokenizedText> out;
  out.reserve(texts.size());
  EncodeOptions one = o;
  one.pad = false;
  size_t longest = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    out.push_back(second.empty() ? encode(texts[i], one) : encode_pair(texts[i], second[i], one));
    longest = std::max(longest, out.back().size());
  }
  if (o.pad)
    for (auto& t : out) pad_to(*p_, t, o.pad_to > 0 ? std::max(o.pad_to, t.size()) : longest, o.pad_left.value_or(p_->pad_left));
  return out;
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids, bool skip_special) const {
  const P& pl = *p_;
  std::vector<std::string> toks;
  toks.reserve(ids.size());
  for (int64_t id : ids) {
    if (skip_special && is_special(id)) continue;
    std::string t = token(id);
    if (!t.empty()) toks.push_back(std::move(t));
  }
  if (pl.decoders.empty()) {
    std::string out;
    for (size_t k = 0; k < toks.size(); ++k) out += (k ? " " : "") + toks[k];
    return out;
  }
  std::string out;
  for (auto& t : run_decoders(pl, std::move(toks))) out += t;
  return out;
}

Tokenizer Tokenizer::general_path_only() const {
  auto p = std::make_shared<Pipeline>(*p_);
  p->fast_byte_level = p->fast_bert = p->fast_spm = false;
  return Tokenizer(p);
}

size_t Tokenizer::vocab_size() const {
  size_t n = p_->model_vocab_size();
  for (const auto& a : p_->added) n = std::max(n, static_cast<size_t>(a.id) + 1);
  return n;
}

std::string Tokenizer::token(int64_t id) const {
  auto it = p_->added_by_id.find(id);
  if (it != p_->added_by_id.end()) return p_->added[it->second].content;
  return p_->model_token(id);
}

int64_t Tokenizer::id_of(std::string_view t) const {
  for (const auto& a : p_->added)
    if (a.content == t) return a.id;
  return p_->model_id(t);
}

bool Tokenizer::is_special(int64_t id) const {
  auto it = p_->added_by_id.find(id);
  if (it != p_->added_by_id.end()) return p_->added[it->second].special;
  return false;
}

int64_t Tokenizer::bos_id() const { return p_->bos; }
int64_t Tokenizer::eos_id() const { return p_->eos; }
int64_t Tokenizer::pad_id() const { return p_->pad >= 0 ? p_->pad : p_->eos >= 0 ? p_->eos : 0; }
int64_t Tokenizer::unk_id() const { return p_->unk; }
size_t Tokenizer::model_max_length() const { return p_->model_max_length; }
std::string Tokenizer::describe() const {
  return p_->kind + ", " + std::to_string(vocab_size()) + " tokens, from " + p_->source;
}

}  // namespace kotsu
