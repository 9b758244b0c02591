#include "kotsu/text/wordpiece.hpp"

#include "kotsu/core/error.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/text/utf8.hpp"

namespace kotsu {

void wordpiece_split(std::string_view word, const VocabIndex& ids, const std::string& prefix,
                     size_t max_chars, int64_t unk, std::vector<int64_t>& out, std::vector<std::pair<uint32_t, uint32_t>>* spans,
                     size_t max_token_bytes) {
  std::vector<size_t> bounds;  // character starts
  for (size_t i = 0; i < word.size(); ++i)
    if ((static_cast<unsigned char>(word[i]) & 0xC0) != 0x80) bounds.push_back(i);
  bounds.push_back(word.size());
  const size_t n_chars = bounds.size() - 1;
  auto whole_unk = [&](size_t mark_ids, size_t mark_spans) {
    out.resize(mark_ids);
    out.push_back(unk);
    if (spans) {
      spans->resize(mark_spans);
      spans->emplace_back(0, static_cast<uint32_t>(word.size()));
    }
  };
  const size_t mark = out.size(), smark = spans ? spans->size() : 0;
  if (n_chars > max_chars) return whole_unk(mark, smark);
  size_t start = 0;
  std::string piece;
  while (start < n_chars) {
    size_t end = n_chars;
    if (max_token_bytes > 0)  // no token is longer: skip the lookups that cannot match
      while (end > start + 1 && bounds[end] - bounds[start] + (start > 0 ? prefix.size() : 0) > max_token_bytes) --end;
    int64_t found = -1;
    while (start < end) {
      piece.clear();
      if (start > 0) piece = prefix;
      piece.append(word.substr(bounds[start], bounds[end] - bounds[start]));
      found = ids.find(piece);
      if (found >= 0) break;
      --end;
    }
    if (found < 0) return whole_unk(mark, smark);
    out.push_back(found);
    if (spans) spans->emplace_back(static_cast<uint32_t>(bounds[start]), static_cast<uint32_t>(bounds[end]));
    start = end;
  }
}

std::vector<std::string> read_vocab_txt(const std::string& path) {
  std::string text = read_file(path, size_t(256) << 20);
  size_t bad = utf8_invalid_at(text);
  if (bad != std::string::npos) throw Error(path, "byte " + std::to_string(bad), "invalid UTF-8");
  std::vector<std::string> vocab;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string tok = text.substr(pos, nl - pos);
    if (!tok.empty() && tok.back() == '\r') tok.pop_back();
    vocab.push_back(std::move(tok));
    pos = nl + 1;
  }
  if (vocab.empty() || (vocab.size() == 1 && vocab[0].empty())) throw Error(path, "vocab", "is empty");
  return vocab;
}

}  // namespace kotsu
