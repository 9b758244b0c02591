#include "kotsu/text/use_lite_vocab.hpp"

#include <algorithm>

#include "kotsu/core/error.hpp"
#include "kotsu/text/utf8.hpp"

namespace kotsu {

UseLiteVocab::UseLiteVocab(std::vector<std::pair<std::string, double>> pieces, size_t reserved, std::string source)
    : pieces_(std::move(pieces)), source_(std::move(source)) {
  if (pieces_.size() <= reserved) throw Error(source_, "vocab", "has no pieces after the reserved ones");
  utf16_len_.reserve(pieces_.size());
  for (size_t i = 0; i < pieces_.size(); ++i) {
    const std::string& p = pieces_[i].first;
    int64_t units = 0, cps = 0;
    for (char32_t c : utf8_decode(p)) {
      units += c > 0xFFFF ? 2 : 1;
      ++cps;
    }
    utf16_len_.push_back(units);
    if (i >= reserved && !p.empty()) {
      ids_[p] = static_cast<int64_t>(i);
      max_cps_ = std::max(max_cps_, static_cast<size_t>(cps));
    }
  }
}

int64_t UseLiteVocab::id_of(std::string_view piece) const {
  auto it = ids_.find(std::string(piece));
  if (it != ids_.end()) return it->second;
  for (size_t i = 0; i < pieces_.size(); ++i)
    if (pieces_[i].first == piece) return static_cast<int64_t>(i);  // reserved pieces
  return -1;
}

void UseLiteVocab::encode(std::string_view text, std::vector<int64_t>& ids, std::vector<std::pair<uint32_t, uint32_t>>* spans) const {
  // code point boundaries (an invalid byte counts as one symbol)
  std::vector<uint32_t> at;
  for (size_t i = 0; i < text.size(); i += utf8_char_len(text, i)) at.push_back(static_cast<uint32_t>(i));
  const size_t n = at.size();
  if (n == 0) return;
  at.push_back(static_cast<uint32_t>(text.size()));
  std::vector<double> best(n + 1, 0.0);
  std::vector<int64_t> words(n + 1, 0);
  // arcs ending at each position, in the package's order: start ascending, then shorter first
  std::vector<std::vector<std::pair<size_t, int64_t>>> ending(n + 1);  // (start, id) with id -1 = unknown
  std::string piece;
  for (size_t s = 0; s < n; ++s) {
    bool any = false;
    for (size_t len = 1; len <= max_cps_ && s + len <= n; ++len) {
      piece.assign(text.substr(at[s], at[s + len] - at[s]));
      auto it = ids_.find(piece);
      if (it == ids_.end()) continue;
      ending[s + len].emplace_back(s, it->second);
      any = true;
    }
    if (!any) ending[s + 1].emplace_back(s, -1);
  }
  for (size_t e = 0; e <= n; ++e) {
    std::stable_sort(ending[e].begin(), ending[e].end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto [s, id] : ending[e]) {
      double score = (id < 0 ? 0.0 : pieces_[static_cast<size_t>(id)].second) + best[s];
      if (best[e] == 0 || score >= best[e]) {
        best[e] = score;
        words[e] = id < 0 ? 0 : id;
      }
    }
  }
  // walk back by UTF-16 lengths, as the package does
  std::vector<std::pair<int64_t, std::pair<uint32_t, uint32_t>>> back;
  for (int64_t it = static_cast<int64_t>(n); it > 0;) {
    int64_t id = words[static_cast<size_t>(it)];
    int64_t step = std::max<int64_t>(1, utf16_len_[static_cast<size_t>(id)]);
    int64_t start = std::max<int64_t>(0, it - step);
    back.push_back({id, {at[static_cast<size_t>(start)], at[static_cast<size_t>(it)]}});
    it -= step;
  }
  std::reverse(back.begin(), back.end());
  // fuse runs of unknown ids (the package merges each run into its first, walking back)
  for (size_t k = 0; k < back.size(); ++k) {
    if (k > 0 && back[k].first == 0 && back[k - 1].first == 0) {
      if (spans) spans->back().second = back[k].second.second;
      continue;
    }
    ids.push_back(back[k].first);
    if (spans) spans->push_back(back[k].second);
  }
}

}  // namespace kotsu
