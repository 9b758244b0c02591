#include "kotsu/text/byte_level.hpp"

#include <unordered_map>

#include "kotsu/text/utf8.hpp"

namespace kotsu {

namespace {

std::array<char32_t, 256> byte_to_cp() {
  std::array<char32_t, 256> m{};
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    m[static_cast<size_t>(b)] = printable ? static_cast<char32_t>(b) : next++;
  }
  return m;
}

}  // namespace

const std::array<std::string, 256>& byte_level_chars() {
  static const std::array<std::string, 256> chars = [] {
    std::array<std::string, 256> c;
    auto m = byte_to_cp();
    for (size_t b = 0; b < 256; ++b) utf8_append(c[b], m[b]);
    return c;
  }();
  return chars;
}

bool byte_level_decode(std::string_view text, std::string& out) {
  static const std::unordered_map<char32_t, unsigned char> inverse = [] {
    std::unordered_map<char32_t, unsigned char> inv;
    auto m = byte_to_cp();
    for (size_t b = 0; b < 256; ++b) inv[m[b]] = static_cast<unsigned char>(b);
    return inv;
  }();
  bool ok = true;
  for (char32_t c : utf8_decode(text)) {
    auto it = inverse.find(c);
    if (it == inverse.end()) {
      ok = false;
      utf8_append(out, c);
    } else {
      out.push_back(static_cast<char>(it->second));
    }
  }
  return ok;
}

}  // namespace kotsu
