// Decoders of the Tokenizer pipeline (see tokenizer_text.hpp).
#include <utf8proc.h>

#include <algorithm>
#include <cstring>

#include "kotsu/core/error.hpp"
#include "kotsu/text/byte_level.hpp"
#include "kotsu/text/tokenizer_text.hpp"
#include "kotsu/text/unicode.hpp"
#include "kotsu/text/utf8.hpp"

namespace kotsu::tok {


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
          std::string t;
          if (k != 0 && toks[k].rfind(d.a, 0) == 0) {
            t = toks[k].substr(d.a.size());
          } else {  // a new word: a space before it (built by append: GCC 12 misreads insert(0, " ") as an overflow)
            t.reserve(toks[k].size() + 1);
            if (k != 0) t.push_back(' ');
            t.append(toks[k]);
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


}  // namespace kotsu::tok
