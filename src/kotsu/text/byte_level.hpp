// kotsu/text/byte_level: GPT-2's reversible byte <-> printable-character map (bytes_to_unicode in
// openai/gpt-2 encoder.py): printable Latin-1 bytes map to themselves, the other 68 to U+0100..U+0143.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace kotsu {

// UTF-8 of the character byte b maps to.
const std::array<std::string, 256>& byte_level_chars();
// Inverse: appends the original bytes of byte-level text to `out`; returns false (leaving what it could
// decode appended) when `text` holds a character outside the map.
bool byte_level_decode(std::string_view text, std::string& out);

}  // namespace kotsu
