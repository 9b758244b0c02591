// kotsu/text/unicode: the character classes and per-character mappings of BERT's tokenizer (and of
// tokenizers' BertNormalizer / BertPreTokenizer), on utf8proc's Unicode tables.
#pragma once
#include <vector>

namespace kotsu {

bool is_whitespace(char32_t c);   // space, \t, \n, \r or category Zs
bool is_control(char32_t c);      // categories Cc/Cf/Cn/Co/Cs except \t \n \r
bool is_punctuation(char32_t c);  // ASCII symbols and categories P*
bool is_cjk(char32_t c);          // CJK ideograph blocks (BERT's _is_chinese_char)
// Full lower-case mapping of one code point (Python's str.lower), appended to `out`.
void lower_into(char32_t c, std::vector<char32_t>& out);
// NFD then drop nonspacing marks (Mn), per code point.
void strip_accents_into(char32_t c, std::vector<char32_t>& out);

}  // namespace kotsu
