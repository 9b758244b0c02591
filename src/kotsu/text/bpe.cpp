#include "kotsu/text/bpe.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <queue>

#include "kotsu/core/error.hpp"
#include "kotsu/text/utf8.hpp"
#include "kotsu/text/byte_level.hpp"

namespace kotsu {

struct BpeModel::WordCache {
  static constexpr size_t kSets = 16384, kKey = 30, kTokens = 12;  // two ways per set: ~3 MB
  struct Slot {
    uint32_t hash = 0;
    uint8_t key_len = 0, n = 0;
    char key[kKey];
    int32_t ids[kTokens];
    uint8_t lens[kTokens];
  };
  std::mutex mu;
  std::vector<Slot> slots = std::vector<Slot>(2 * kSets);
  static uint32_t hash(std::string_view w) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (char c : w) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
    return static_cast<uint32_t>(h ^ (h >> 32)) | 1u;
  }
};

BpeModel::BpeModel(std::vector<std::string> vocab, BpeOptions opts, std::string source)
    : vocab_(std::move(vocab)), opts_(std::move(opts)), source_(std::move(source)), cache_(std::make_shared<WordCache>()) {
  index_vocab();
}

BpeModel::BpeModel(std::vector<std::string> vocab, const std::vector<std::pair<std::string, std::string>>& merges,
                   BpeOptions opts, std::string source)
    : BpeModel(std::move(vocab), std::move(opts), std::move(source)) {
  std::unordered_map<uint64_t, Merge> table;
  table.reserve(merges.size() * 2);
  for (size_t r = 0; r < merges.size(); ++r) {
    const auto& [a, b] = merges[r];
    int64_t ia = id_of(a), ib = id_of(b), im = id_of(a + b);
    std::string field = "merges[" + std::to_string(r) + "]";
    if (ia < 0) throw Error(source_, field, "refers to unknown token '" + a + "'");
    if (ib < 0) throw Error(source_, field, "refers to unknown token '" + b + "'");
    if (im < 0) throw Error(source_, field, "merges into '" + a + b + "', which is not in the vocabulary");
    table.try_emplace(key(ia, ib), Merge{static_cast<uint32_t>(r), im});  // first (lowest rank) wins
  }
  freeze_merges(table);
}

BpeModel BpeModel::from_scores(std::vector<std::string> vocab, const std::vector<float>& scores, BpeOptions opts,
                               std::string source, const std::vector<bool>& mergeable) {
  if (scores.size() != vocab.size())
    throw Error(source, "scores", std::to_string(scores.size()) + " scores for " + std::to_string(vocab.size()) + " tokens");
  BpeModel m(std::move(vocab), std::move(opts), std::move(source));
  // dense rank of each distinct score, highest first: equal scores tie and the leftmost pair wins, as in llama.cpp
  std::vector<float> distinct(scores);
  std::sort(distinct.begin(), distinct.end(), std::greater<float>());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  std::unordered_map<uint64_t, Merge> table;
  for (size_t id = 0; id < m.vocab_.size(); ++id) {
    if (!mergeable.empty() && !mergeable[id]) continue;
    const std::string& t = m.vocab_[id];
    auto rank = static_cast<uint32_t>(std::lower_bound(distinct.begin(), distinct.end(), scores[id], std::greater<float>()) -
                                      distinct.begin());
    for (size_t cut = 1; cut < t.size(); ++cut) {
      if ((static_cast<unsigned char>(t[cut]) & 0xC0) == 0x80) continue;  // split between characters only
      int64_t a = m.id_of(std::string_view(t).substr(0, cut)), b = m.id_of(std::string_view(t).substr(cut));
      if (a < 0 || b < 0) continue;
      auto [it, fresh] = table.try_emplace(key(a, b), Merge{rank, static_cast<int64_t>(id)});
      if (!fresh && rank < it->second.rank) it->second = Merge{rank, static_cast<int64_t>(id)};
    }
  }
  m.freeze_merges(table);
  return m;
}

void BpeModel::freeze_merges(const std::unordered_map<uint64_t, Merge>& merges) {
  size_t cap = 16;
  merge_shift_ = 60;
  while (cap < merges.size() * 2) {
    cap <<= 1;
    --merge_shift_;
  }
  merge_slots_.assign(cap, MergeSlot{});
  merge_mask_ = cap - 1;
  merge_count_ = merges.size();
  for (const auto& [k, m] : merges) {
    size_t i = (k * 0x9E3779B97F4A7C15ull) >> merge_shift_;
    while (merge_slots_[i].key != ~0ull) i = (i + 1) & merge_mask_;
    merge_slots_[i] = MergeSlot{k, m};
  }
}

void BpeModel::index_vocab() {
  if (vocab_.empty()) throw Error(source_, "vocab", "is empty");
  if (vocab_.size() >= (size_t(1) << 31)) throw Error(source_, "vocab", "has more than 2^31 tokens");
  ids_ = VocabIndex(vocab_);
  if (!opts_.unk_token.empty()) unk_ = id_of(opts_.unk_token);
  for (int b = 0; b < 256; ++b) {
    if (opts_.byte_level) {
      byte_ids_[b] = id_of(byte_level_chars()[static_cast<size_t>(b)]);
    } else {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      byte_ids_[b] = id_of(name);
    }
  }
}

int64_t BpeModel::id_of(std::string_view token) const {
  return ids_.find(token);
}

std::vector<std::pair<std::string, std::string>> BpeModel::merges() const {
  std::vector<std::pair<uint32_t, uint64_t>> order;
  order.reserve(merge_count_);
  for (const auto& s : merge_slots_)
    if (s.key != ~0ull) order.emplace_back(s.merge.rank, s.key);
  std::sort(order.begin(), order.end());
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(order.size());
  for (auto [r, k] : order) out.emplace_back(vocab_[k >> 32], vocab_[k & 0xFFFFFFFFu]);
  return out;
}

void BpeModel::merge_word(std::string_view word, std::vector<int64_t>& ids, std::vector<Span>& spans) const {
  struct Sym {
    int64_t id;
    uint32_t begin, len;
    int32_t prev, next;
  };
  std::vector<Sym> syms;
  syms.reserve(word.size());
  size_t i = 0;
  auto push = [&](int64_t id, uint32_t len) {
    int32_t k = static_cast<int32_t>(syms.size());
    syms.push_back({id, static_cast<uint32_t>(i), len, k - 1, -1});
    if (k > 0) syms[static_cast<size_t>(k - 1)].next = k;
  };
  bool last_unk = false;
  while (i < word.size()) {
    size_t n = opts_.byte_level ? 1 : utf8_char_len(word, i);
    int64_t id = -1;
    if (opts_.byte_level) {
      id = byte_ids_[static_cast<unsigned char>(word[i])];
    } else if (opts_.continuing_subword_prefix.empty() && opts_.end_of_word_suffix.empty()) {
      id = id_of(word.substr(i, n));
    } else {
      std::string piece;
      if (i > 0) piece = opts_.continuing_subword_prefix;
      piece.append(word.substr(i, n));
      if (i + n == word.size()) piece += opts_.end_of_word_suffix;
      id = id_of(piece);
    }
    if (id >= 0) {
      push(id, static_cast<uint32_t>(n));
      last_unk = false;
    } else if (opts_.byte_fallback && !opts_.byte_level &&
               std::all_of(word.begin() + static_cast<ptrdiff_t>(i), word.begin() + static_cast<ptrdiff_t>(i + n),
                           [&](char c) { return byte_ids_[static_cast<unsigned char>(c)] >= 0; })) {
      for (size_t k = 0; k < n; ++k, ++i) push(byte_ids_[static_cast<unsigned char>(word[i])], 1);
      continue;
      last_unk = false;
    } else if (unk_ >= 0) {
      if (opts_.fuse_unk && last_unk) syms.back().len += static_cast<uint32_t>(n);
      else push(unk_, static_cast<uint32_t>(n));
      last_unk = true;
    }
    // no unknown token: the character is dropped (its bytes count toward no token)
    i += n;
  }
  // merge the lowest-ranked adjacent pair until none is left (ties: leftmost)
  struct Cand {
    uint32_t rank;
    int32_t left;
    int64_t lid, rid;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> q;
  auto consider = [&](int32_t l) {
    if (l < 0) return;
    int32_t r = syms[static_cast<size_t>(l)].next;
    if (r < 0) return;
    int64_t a = syms[static_cast<size_t>(l)].id, b = syms[static_cast<size_t>(r)].id;
    if (const Merge* m = find_merge(key(a, b))) q.push({m->rank, l, a, b});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(syms.size()); ++i) consider(i);
  while (!q.empty()) {
    Cand c = q.top();
    q.pop();
    Sym& l = syms[static_cast<size_t>(c.left)];
    if (l.len == 0 || l.id != c.lid || l.next < 0) continue;  // stale
    Sym& r = syms[static_cast<size_t>(l.next)];
    if (r.id != c.rid) continue;
    l.id = find_merge(key(c.lid, c.rid))->id;
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) syms[static_cast<size_t>(r.next)].prev = c.left;
    consider(l.prev);
    consider(c.left);
  }
  for (int32_t j = syms.empty() ? -1 : 0; j >= 0; j = syms[static_cast<size_t>(j)].next) {
    const Sym& s = syms[static_cast<size_t>(j)];
    ids.push_back(s.id);
    spans.emplace_back(s.begin, s.begin + s.len);
  }
}

void BpeModel::encode(std::string_view word, std::vector<int64_t>& ids, std::vector<Span>* spans) const {
  if (word.empty()) return;
  if (opts_.ignore_merges) {
    int64_t whole = -1;
    if (opts_.byte_level) {
      std::string mapped;
      for (char c : word) mapped += byte_level_chars()[static_cast<unsigned char>(c)];
      whole = id_of(mapped);
    } else {
      whole = id_of(word);
    }
    if (whole >= 0) {
      ids.push_back(whole);
      if (spans) spans->emplace_back(0, static_cast<uint32_t>(word.size()));
      return;
    }
  }
  using C = WordCache;
  const bool cacheable = word.size() <= C::kKey;
  uint32_t h = 0;
  if (cacheable) {
    h = C::hash(word);
    std::lock_guard<std::mutex> lock(cache_->mu);
    const C::Slot* set = &cache_->slots[2 * (h & (C::kSets - 1))];
    for (int way = 0; way < 2; ++way) {
      const C::Slot& s = set[way];
      if (s.hash != h || s.key_len != word.size() || std::memcmp(s.key, word.data(), word.size()) != 0) continue;
      uint32_t at = 0;
      for (size_t k = 0; k < s.n; ++k) {
        ids.push_back(s.ids[k]);
        if (spans) spans->emplace_back(at, at + s.lens[k]);
        at += s.lens[k];
      }
      return;
    }
  }
  std::vector<int64_t> wid;
  std::vector<Span> wsp;
  merge_word(word, wid, wsp);
  ids.insert(ids.end(), wid.begin(), wid.end());
  if (spans) spans->insert(spans->end(), wsp.begin(), wsp.end());
  // cache words whose tokens tile them (no dropped characters) in at most kTokens tokens
  bool tiles = cacheable && wid.size() <= C::kTokens && !wsp.empty() && wsp.front().first == 0 && wsp.back().second == word.size();
  for (size_t k = 1; tiles && k < wsp.size(); ++k) tiles = wsp[k].first == wsp[k - 1].second;
  if (tiles) {
    std::lock_guard<std::mutex> lock(cache_->mu);
    C::Slot* set = &cache_->slots[2 * (h & (C::kSets - 1))];
    set[1] = set[0];  // the newest word takes way 0, the previous one moves to way 1
    C::Slot& s = set[0];
    s.hash = h;
    s.key_len = static_cast<uint8_t>(word.size());
    std::memcpy(s.key, word.data(), word.size());
    s.n = static_cast<uint8_t>(wid.size());
    for (size_t k = 0; k < wid.size(); ++k) {
      s.ids[k] = static_cast<int32_t>(wid[k]);
      s.lens[k] = static_cast<uint8_t>(wsp[k].second - wsp[k].first);
    }
  }
}

}  // namespace kotsu
