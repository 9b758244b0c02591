#include "kotsu/data/audit.hpp"

#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <functional>
#include <cstdlib>
#include <map>
#include <numeric>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "kotsu/core/error.hpp"
#include "kotsu/core/hash.hpp"

namespace kotsu {

namespace {


uint64_t fnv1a(const char* s, size_t n) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<unsigned char>(s[i])) * 0x100000001b3ULL;
  return h;
}

// Hashes of the character 5-grams (code points) of s; the whole text when it is shorter.
std::vector<uint64_t> shingles(const std::string& s) {
  std::vector<size_t> starts;
  for (size_t i = 0; i < s.size(); ++i)
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) starts.push_back(i);
  starts.push_back(s.size());
  std::vector<uint64_t> out;
  const size_t chars = starts.size() - 1;
  if (chars <= 5) {
    out.push_back(fnv1a(s.data(), s.size()));
  } else {
    for (size_t i = 0; i + 5 <= chars; ++i) out.push_back(fnv1a(s.data() + starts[i], starts[i + 5] - starts[i]));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

double jaccard(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b) {
  size_t i = 0, j = 0, inter = 0;
  while (i < a.size() && j < b.size()) {
    if (a[i] == b[j]) ++inter, ++i, ++j;
    else if (a[i] < b[j]) ++i;
    else ++j;
  }
  const size_t uni = a.size() + b.size() - inter;
  return uni == 0 ? 1.0 : static_cast<double>(inter) / static_cast<double>(uni);
}

nlohmann::ordered_json row_ref(const AuditRow& r, size_t i) {
  std::string preview = r.text.substr(0, 120);
  while (!preview.empty() && (static_cast<unsigned char>(preview.back()) & 0xC0) == 0x80) preview.pop_back();  // whole characters
  if (!preview.empty() && static_cast<unsigned char>(preview.back()) >= 0xC0) preview.pop_back();
  return {{"row", i}, {"file", r.source}, {"line", r.line}, {"label", r.label}, {"text", preview}};
}

}  // namespace

std::string audit_normal_form(const std::string& text) {
  utf8proc_uint8_t* out = nullptr;
  const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()), static_cast<utf8proc_ssize_t>(text.size()), &out,
                              static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD));
  std::string s = n >= 0 ? std::string(reinterpret_cast<char*>(out), static_cast<size_t>(n)) : text;
  std::free(out);
  std::string r;
  bool space = false;
  for (char c : s) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      space = !r.empty();
      continue;
    }
    if (space) r += ' ';
    space = false;
    r += c;
  }
  return r;
}

nlohmann::ordered_json equal_key_findings(const std::vector<std::string>& keys, const std::vector<bool>& first, const std::vector<std::string>& labels,
                                          const std::function<nlohmann::ordered_json(size_t)>& ref, size_t max_listed) {
  std::unordered_map<std::string, std::vector<size_t>> groups;
  for (size_t i = 0; i < keys.size(); ++i)
    if (!keys[i].empty()) groups[keys[i]].push_back(i);
  std::vector<std::vector<size_t>> ordered;
  for (auto& [k, ids] : groups)
    if (ids.size() > 1) ordered.push_back(ids);
  std::sort(ordered.begin(), ordered.end());
  nlohmann::ordered_json dups = nlohmann::ordered_json::array(), conflicts = nlohmann::ordered_json::array(), leaks = nlohmann::ordered_json::array();
  size_t n_dup_rows = 0, n_conflicts = 0, n_leaks = 0;
  for (const auto& ids : ordered) {
    std::vector<size_t> in_first, in_other;
    for (size_t i : ids) (first[i] ? in_first : in_other).push_back(i);
    if (in_first.size() > 1) {
      std::set<std::string> distinct;
      nlohmann::ordered_json g = nlohmann::ordered_json::array();
      for (size_t i : in_first) distinct.insert(labels[i]), g.push_back(ref(i));
      if (distinct.size() > 1) {
        if (n_conflicts++ < max_listed) conflicts.push_back(g);
      } else {
        n_dup_rows += in_first.size() - 1;
        if (dups.size() < max_listed) dups.push_back(g);
      }
    }
    if (!in_first.empty() && !in_other.empty() && n_leaks++ < max_listed) leaks.push_back({ref(in_first[0]), ref(in_other[0])});
  }
  return {{"exact_duplicates", {{"extra_rows", n_dup_rows}, {"examples", dups}}},
          {"conflicting_labels", {{"groups", n_conflicts}, {"examples", conflicts}}},
          {"leak_groups", n_leaks},
          {"leaks", leaks}};
}

std::string audit_loose_form(const std::string& normal) {
  std::string r;
  for (size_t i = 0; i < normal.size();) {
    utf8proc_int32_t cp = 0;
    const auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(normal.data() + i), static_cast<utf8proc_ssize_t>(normal.size() - i), &cp);
    const size_t len = n > 0 ? static_cast<size_t>(n) : 1;
    const auto cat = n > 0 ? utf8proc_category(cp) : UTF8PROC_CATEGORY_CN;
    const bool drop = (cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO) || cat == UTF8PROC_CATEGORY_ZS || normal[i] == ' ';
    if (!drop) r.append(normal, i, len);
    i += len;
  }
  return r;
}

std::vector<std::pair<size_t, size_t>> near_duplicate_pairs(const std::vector<std::string>& norm, double threshold) {
  constexpr int kBands = 32, kRows = 4;  // 128 MinHash values; P(candidate) at Jaccard 0.8 = 1 - (1 - 0.8^4)^32 ~ 1
  std::vector<std::vector<uint64_t>> sh(norm.size());
  std::vector<std::array<uint64_t, kBands>> band_keys(norm.size());
  for (size_t i = 0; i < norm.size(); ++i) {
    sh[i] = shingles(norm[i]);
    for (int b = 0; b < kBands; ++b) {
      uint64_t key = 0x9E3779B97F4A7C15ULL * static_cast<uint64_t>(b + 1);
      for (int r = 0; r < kRows; ++r) {
        const uint64_t seed = mix64(static_cast<uint64_t>(b * kRows + r) + 1);
        uint64_t mn = UINT64_MAX;
        for (uint64_t x : sh[i]) mn = std::min(mn, mix64(x ^ seed));
        key = mix64(key ^ mn);
      }
      band_keys[i][static_cast<size_t>(b)] = key;
    }
  }
  std::set<std::pair<size_t, size_t>> cand;
  for (int b = 0; b < kBands; ++b) {
    std::unordered_map<uint64_t, std::vector<size_t>> buckets;
    for (size_t i = 0; i < norm.size(); ++i) buckets[band_keys[i][static_cast<size_t>(b)]].push_back(i);
    for (auto& [key, ids] : buckets) {
      if (ids.size() < 2 || ids.size() > 2000) continue;  // a huge bucket is boilerplate, not a near duplicate
      for (size_t x = 0; x < ids.size(); ++x)
        for (size_t y = x + 1; y < ids.size(); ++y) cand.emplace(ids[x], ids[y]);
    }
  }
  std::vector<std::pair<size_t, size_t>> out;
  for (auto [i, j] : cand)
    if (jaccard(sh[i], sh[j]) >= threshold) out.emplace_back(i, j);
  return out;
}

nlohmann::json audit_texts(const std::vector<AuditRow>& rows, const std::vector<int64_t>& tokens, const AuditOptions& o) {
  nlohmann::ordered_json rep;
  const std::string first = rows.empty() ? "" : rows[0].source;
  std::vector<size_t> train_rows;
  for (size_t i = 0; i < rows.size(); ++i)
    if (rows[i].source == first) train_rows.push_back(i);
  // class counts over the (first) data file
  std::map<std::string, int64_t> counts;
  for (size_t i : train_rows) ++counts[rows[i].label];
  int64_t lo = INT64_MAX, hi = 0;
  for (auto& [l, c] : counts) lo = std::min(lo, c), hi = std::max(hi, c);
  rep["rows"] = train_rows.size();
  rep["classes"] = counts;
  rep["imbalance_ratio"] = counts.empty() ? 0.0 : static_cast<double>(hi) / static_cast<double>(lo);
  // lengths
  nlohmann::ordered_json empty = nlohmann::ordered_json::array(), short_ = nlohmann::ordered_json::array(), long_ = nlohmann::ordered_json::array();
  size_t n_empty = 0, n_short = 0, n_long = 0;
  std::vector<std::string> norm(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    norm[i] = audit_normal_form(rows[i].text);
    size_t chars = 0;
    for (char c : norm[i]) chars += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    if (norm[i].empty()) {
      if (n_empty++ < o.max_listed) empty.push_back(row_ref(rows[i], i));
    } else if (static_cast<int64_t>(chars) < o.min_chars) {
      if (n_short++ < o.max_listed) short_.push_back(row_ref(rows[i], i));
    }
    if (o.max_tokens > 0 && i < tokens.size() && tokens[i] > o.max_tokens)
      if (n_long++ < o.max_listed) long_.push_back(row_ref(rows[i], i));
  }
  rep["empty"] = {{"count", n_empty}, {"examples", empty}};
  rep["too_short"] = {{"count", n_short}, {"min_chars", o.min_chars}, {"examples", short_}};
  if (o.max_tokens > 0) rep["too_long"] = {{"count", n_long}, {"max_tokens", o.max_tokens}, {"examples", long_}};
  // exact duplicates and conflicting labels (within the first file), leakage (across files)
  std::vector<bool> first_file(rows.size());
  std::vector<std::string> labels(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) first_file[i] = rows[i].source == first, labels[i] = rows[i].label;
  const nlohmann::ordered_json same = equal_key_findings(norm, first_file, labels, [&](size_t i) { return row_ref(rows[i], i); }, o.max_listed);
  rep["exact_duplicates"] = same["exact_duplicates"];
  rep["conflicting_labels"] = same["conflicting_labels"];
  const auto& leaks = same["leaks"];
  const size_t n_leaks = same["leak_groups"];
  // near duplicates
  size_t n_near = 0, n_near_conflict = 0, n_near_leak = 0;
  nlohmann::ordered_json near = nlohmann::ordered_json::array(), near_leaks = nlohmann::ordered_json::array();
  std::vector<std::string> loose(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) loose[i] = audit_loose_form(norm[i]);
  for (auto [i, j] : near_duplicate_pairs(loose, o.near_threshold)) {
    if (norm[i] == norm[j] || loose[i].empty() || loose[j].empty()) continue;  // exact duplicates; nothing but punctuation
    const bool a = rows[i].source == first, b = rows[j].source == first;
    if (a && b) {
      ++n_near;
      n_near_conflict += rows[i].label != rows[j].label;
      if (near.size() < o.max_listed) near.push_back({row_ref(rows[i], i), row_ref(rows[j], j)});
    } else if (a != b) {
      ++n_near_leak;
      if (near_leaks.size() < o.max_listed) near_leaks.push_back({row_ref(rows[i], i), row_ref(rows[j], j)});
    }
  }
  rep["near_duplicates"] = {{"pairs", n_near}, {"with_different_labels", n_near_conflict}, {"jaccard_at_least", o.near_threshold}, {"examples", near}};
  if (train_rows.size() != rows.size())
    rep["leakage"] = {{"exact", n_leaks}, {"near", n_near_leak}, {"examples", leaks}, {"near_examples", near_leaks}};
  return nlohmann::json(rep);
}

MislabelRanking rank_mislabels(const std::vector<int64_t>& y, const std::vector<double>& probs, int64_t k) {
  const size_t n = y.size();
  if (k < 2 || probs.size() != n * static_cast<size_t>(k)) throw Error("", "audit", "probabilities are not rows x classes");
  MislabelRanking r;
  r.thresholds.assign(static_cast<size_t>(k), 0.0);
  std::vector<int64_t> count(static_cast<size_t>(k), 0);
  for (size_t i = 0; i < n; ++i) {
    r.thresholds[static_cast<size_t>(y[i])] += probs[i * static_cast<size_t>(k) + static_cast<size_t>(y[i])];
    ++count[static_cast<size_t>(y[i])];
  }
  for (size_t c = 0; c < r.thresholds.size(); ++c) r.thresholds[c] = count[c] ? r.thresholds[c] / static_cast<double>(count[c]) : 1.0;
  std::vector<size_t> suspects, others;
  for (size_t i = 0; i < n; ++i) {
    const double* p = probs.data() + i * static_cast<size_t>(k);
    // the confident joint puts row i under the class j != y[i] with the highest probability above its threshold
    bool suspect = false;
    for (int64_t j = 0; j < k; ++j)
      if (j != y[i] && p[j] >= r.thresholds[static_cast<size_t>(j)] && p[j] > p[y[i]]) suspect = true;
    (suspect ? suspects : others).push_back(i);
  }
  auto by_self_confidence = [&](size_t a, size_t b) {
    const double pa = probs[a * static_cast<size_t>(k) + static_cast<size_t>(y[a])], pb = probs[b * static_cast<size_t>(k) + static_cast<size_t>(y[b])];
    return pa < pb || (pa == pb && a < b);
  };
  r.suspects = suspects.size();
  r.suspect.assign(n, false);
  for (size_t i : suspects) r.suspect[i] = true;
  r.order.resize(n);
  std::iota(r.order.begin(), r.order.end(), 0);
  std::sort(r.order.begin(), r.order.end(), by_self_confidence);
  return r;
}

}  // namespace kotsu
