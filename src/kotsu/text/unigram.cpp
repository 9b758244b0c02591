#include "kotsu/text/unigram.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <limits>

#include "kotsu/core/error.hpp"
#include "kotsu/text/utf8.hpp"

namespace kotsu {

namespace {


constexpr double kUnkPenalty = 10.0;  // SentencePiece: the unknown piece scores min_score - 10

}  // namespace

UnigramModel::UnigramModel(std::vector<std::pair<std::string, double>> pieces, int64_t unk_id, bool byte_fallback,
                           std::string source, const std::vector<bool>& matchable)
    : pieces_(std::move(pieces)), unk_(unk_id), byte_fallback_(byte_fallback), source_(std::move(source)) {
  if (pieces_.empty()) throw Error(source_, "model.vocab", "is empty");
  if (unk_ < 0 || static_cast<size_t>(unk_) >= pieces_.size())
    throw Error(source_, "model.unk_id", std::to_string(unk_) + " is not a piece id");
  double min_score = std::numeric_limits<double>::max();
  for (size_t i = 0; i < pieces_.size(); ++i) {
    const auto& [p, score] = pieces_[i];
    if (!std::isfinite(score)) throw Error(source_, "model.vocab[" + std::to_string(i) + "]", "score is not finite");
    min_score = std::min(min_score, score);
    max_piece_bytes_ = std::max(max_piece_bytes_, p.size());
  }
  unk_score_ = min_score - kUnkPenalty;
  std::vector<std::string> index;  // pieces segmentation may produce; the others stay out of the index
  index.reserve(pieces_.size());
  for (size_t i = 0; i < pieces_.size(); ++i) index.push_back(matchable.empty() || matchable[i] ? pieces_[i].first : std::string());
  ids_ = VocabIndex(index);
  std::fill(std::begin(byte_ids_), std::end(byte_ids_), -1);
  for (size_t i = 0; i < pieces_.size(); ++i) {
    const std::string& t = pieces_[i].first;
    unsigned int b;
    if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' && std::sscanf(t.c_str() + 3, "%2X", &b) == 1 && byte_ids_[b] < 0)
      byte_ids_[b] = static_cast<int64_t>(i);
  }
}

int64_t UnigramModel::id_of(std::string_view piece) const {
  return piece.empty() ? -1 : ids_.find(piece);
}

void UnigramModel::encode(std::string_view word, std::vector<int64_t>& ids,
                          std::vector<std::pair<uint32_t, uint32_t>>* spans) const {
  const size_t n = word.size();
  if (n == 0) return;
  struct Best {
    double score = 0;
    int64_t id = -1;
    size_t start = 0;
    bool set = false;
  };
  std::vector<Best> best(n + 1);
  best[0].set = true;
  for (size_t s = 0; s < n;) {
    const size_t first = utf8_char_len(word, s);
    if (!best[s].set) {  // unreachable position (cannot happen: the unknown piece always covers a character)
      s += first;
      continue;
    }
    bool single = false;
    // every piece starting at s, shortest first (whole characters only)
    for (size_t e = s + first; e <= n && e - s <= max_piece_bytes_; e += utf8_char_len(word, e)) {
      int64_t id = id_of(word.substr(s, e - s));
      if (id >= 0) {
        if (e == s + first) single = true;
        double sc = best[s].score + pieces_[static_cast<size_t>(id)].second;
        if (!best[e].set || sc > best[e].score) best[e] = {sc, id, s, true};
      }
      if (e == n) break;
    }
    if (!single) {
      size_t e = s + first;
      double sc = best[s].score + unk_score_;
      if (!best[e].set || sc > best[e].score) best[e] = {sc, unk_, s, true};
    }
    s += first;
  }
  // walk back, then emit in order; runs of unknown characters fuse into one unknown piece
  std::vector<std::pair<int64_t, std::pair<uint32_t, uint32_t>>> path;
  for (size_t e = n; e > 0; e = best[e].start) path.push_back({best[e].id, {static_cast<uint32_t>(best[e].start), static_cast<uint32_t>(e)}});
  std::reverse(path.begin(), path.end());
  bool prev_unk = false;
  for (auto& [id, sp] : path) {
    if (id == unk_ && byte_fallback_) {
      bool all = true;
      for (uint32_t k = sp.first; k < sp.second; ++k) all = all && byte_ids_[static_cast<unsigned char>(word[k])] >= 0;
      if (all) {
        for (uint32_t k = sp.first; k < sp.second; ++k) {
          ids.push_back(byte_ids_[static_cast<unsigned char>(word[k])]);
          if (spans) spans->emplace_back(k, k + 1);
        }
        prev_unk = false;
        continue;
      }
    }
    if (id == unk_ && prev_unk) {
      if (spans) spans->back().second = sp.second;
      continue;
    }
    ids.push_back(id);
    if (spans) spans->push_back(sp);
    prev_unk = id == unk_;
  }
}

}  // namespace kotsu
