// Normalizers of the Tokenizer pipeline (see tokenizer_text.hpp).
#include <utf8proc.h>

#include <algorithm>
#include <cstring>

#include "kotsu/core/error.hpp"
#include "kotsu/text/byte_level.hpp"
#include "kotsu/text/tokenizer_text.hpp"
#include "kotsu/text/unicode.hpp"
#include "kotsu/text/utf8.hpp"

namespace kotsu::tok {

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


}  // namespace kotsu::tok
