// kotsu/text/tokenizer_text: the text-level stages of a Tokenizer (internal to text/tokenizer*.cpp):
// Piece (normalized text that remembers the original byte range of each byte), the normalizers, the
// pre-tokenizers, added-token splitting and the decoders.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kotsu/text/tokenizer_pipeline.hpp"

namespace kotsu::tok {

using P = Tokenizer::Pipeline;

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


// The character at i: its code point (-1 for an invalid byte) and byte length.
int32_t char_at(std::string_view s, size_t i, size_t& n);
std::vector<std::pair<size_t, size_t>> find_literal(std::string_view text, std::string_view pat);
// Replaces the byte ranges `hits` with `content`; the replacement maps to the range it replaced.
void replace_ranges(Piece& p, const std::vector<std::pair<size_t, size_t>>& hits, const std::string& content);
// Prepends s, mapped to an empty range at the start of the piece.
void prepend(Piece& p, const std::string& s);

// Applies the pipeline's normalizers in order.
void normalize(const P& pl, Piece& p);
// Applies the pipeline's pre-tokenizers in order, each splitting every piece.
void pre_tokenize(const P& pl, std::vector<Piece>& pieces);

// A piece of text, or an added token (id >= 0) found in it.
struct Part {
  Piece text;
  int64_t added = -1;
};
// Splits a piece around the added tokens with normalized == `normalized`.
void split_added(const P& pl, Piece p, bool normalized, std::vector<Part>& out);

// Runs the pipeline's decoders over token strings.
std::vector<std::string> run_decoders(const P& pl, std::vector<std::string> toks);

}  // namespace kotsu::tok
