// kotsu/text/utf8: UTF-8 decoding with validation (the byte offset of the first bad sequence is named),
// and encoding of code points. Unicode properties come from utf8proc.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kotsu {

// Returns the byte offset of the first invalid UTF-8 sequence, or npos when `s` is valid.
size_t utf8_invalid_at(std::string_view s);
// Decodes valid UTF-8 (call utf8_invalid_at first for untrusted input); invalid bytes become U+FFFD.
std::vector<char32_t> utf8_decode(std::string_view s);
void utf8_append(std::string& out, char32_t cp);
// Byte length of the character starting at s[i] (1 for an invalid or truncated sequence: one byte).
size_t utf8_char_len(std::string_view s, size_t i);
std::string utf8_encode(const std::vector<char32_t>& cps);
// Characters (code points) of valid UTF-8: the bytes that start a sequence.
size_t utf8_length(std::string_view s);

}  // namespace kotsu
