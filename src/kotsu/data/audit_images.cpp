#include "kotsu/data/audit_images.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <map>
#include <numbers>
#include <set>
#include <unordered_map>

#include "kotsu/core/hash.hpp"
#include "kotsu/data/audit.hpp"

namespace kotsu {

namespace {

constexpr int kSide = 32, kLow = 8;

// weights[o][s]: share of source pixel s in output pixel o when `from` pixels are area-averaged to `to`
// (each output pixel covers from / to source pixels; fractional overlaps weigh in proportionally).
std::vector<std::vector<std::pair<int, double>>> area_weights(int from, int to) {
  std::vector<std::vector<std::pair<int, double>>> w(static_cast<size_t>(to));
  const double span = static_cast<double>(from) / to;
  for (int o = 0; o < to; ++o) {
    const double lo = o * span, hi = (o + 1) * span;
    for (int s = static_cast<int>(std::floor(lo)); s < from && s < hi; ++s) {
      const double overlap = std::min<double>(hi, s + 1) - std::max<double>(lo, s);
      if (overlap > 0) w[static_cast<size_t>(o)].emplace_back(s, overlap / span);
    }
  }
  return w;
}

std::vector<double> grey(const Image& img) {
  std::vector<double> g(static_cast<size_t>(img.width) * static_cast<size_t>(img.height));
  for (size_t i = 0; i < g.size(); ++i) {
    const uint8_t* p = img.pixels.data() + 3 * i;
    g[i] = (299.0 * p[0] + 587.0 * p[1] + 114.0 * p[2]) / 1000.0;
  }
  return g;
}


nlohmann::ordered_json ref(const AuditPicture& r, size_t i) { return {{"row", i}, {"file", r.name}, {"label", r.label}}; }

}  // namespace

namespace {

// Grey levels area-averaged to 32 x 32, unrounded.
std::vector<double> grey_small(const Image& img) {
  std::vector<double> out(kSide * kSide, 0.0);
  if (img.width <= 0 || img.height <= 0) return out;
  const std::vector<double> g = grey(img);
  const auto wr = area_weights(img.height, kSide), wc = area_weights(img.width, kSide);
  // rows first: tmp[o][x] = sum_s wr[o][s] g[s][x]; then columns
  std::vector<double> tmp(static_cast<size_t>(kSide) * static_cast<size_t>(img.width), 0.0);
  for (int o = 0; o < kSide; ++o)
    for (auto [s, w] : wr[static_cast<size_t>(o)])
      for (int x = 0; x < img.width; ++x)
        tmp[static_cast<size_t>(o) * img.width + x] += w * g[static_cast<size_t>(s) * img.width + x];
  for (int r = 0; r < kSide; ++r)
    for (int o = 0; o < kSide; ++o) {
      double v = 0;
      for (auto [s, w] : wc[static_cast<size_t>(o)]) v += w * tmp[static_cast<size_t>(r) * img.width + s];
      out[static_cast<size_t>(r * kSide + o)] = v;
    }
  return out;
}

std::vector<uint8_t> to_bytes(const std::vector<double>& small) {
  std::vector<uint8_t> out(small.size());
  for (size_t i = 0; i < small.size(); ++i) out[i] = static_cast<uint8_t>(std::clamp(std::lround(small[i]), 0L, 255L));
  return out;
}

uint64_t dct_hash(const std::vector<double>& small);

}  // namespace

std::vector<uint8_t> grey_thumbnail(const Image& img) { return to_bytes(grey_small(img)); }

double thumbnail_similarity(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b, int max_shift) {
  if (a.size() != kSide * kSide || b.size() != a.size()) return 0;
  double best = -1;
  for (int dy = -max_shift; dy <= max_shift; ++dy)
    for (int dx = -max_shift; dx <= max_shift; ++dx) {
      // Pearson correlation over the overlap of a and b shifted by (dy, dx)
      double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
      int n = 0;
      for (int y = std::max(0, dy); y < kSide + std::min(0, dy); ++y)
        for (int x = std::max(0, dx); x < kSide + std::min(0, dx); ++x) {
          const double u = a[static_cast<size_t>(y * kSide + x)], v = b[static_cast<size_t>((y - dy) * kSide + (x - dx))];
          sa += u, sb += v, saa += u * u, sbb += v * v, sab += u * v;
          ++n;
        }
      const double cov = sab - sa * sb / n, va = saa - sa * sa / n, vb = sbb - sb * sb / n;
      const double r = va > 0 && vb > 0 ? cov / std::sqrt(va * vb) : (va == 0 && vb == 0 ? 1.0 : 0.0);
      best = std::max(best, r);
    }
  return best;
}

uint64_t perceptual_hash(const Image& img) { return dct_hash(grey_small(img)); }

namespace {

uint64_t dct_hash(const std::vector<double>& small) {
  // the 8 x 8 lowest frequencies of the 2-D DCT-II (unnormalised, as scipy.fftpack.dct)
  std::array<double, kLow * kSide> cosines{};
  for (int k = 0; k < kLow; ++k)
    for (int n = 0; n < kSide; ++n)
      cosines[static_cast<size_t>(k * kSide + n)] = 2 * std::cos(std::numbers::pi * k * (2 * n + 1) / (2.0 * kSide));
  std::array<double, kLow * kSide> by_rows{};  // DCT over rows (axis 0) for the first 8 frequencies
  for (int k = 0; k < kLow; ++k)
    for (int c = 0; c < kSide; ++c) {
      double v = 0;
      for (int n = 0; n < kSide; ++n) v += cosines[static_cast<size_t>(k * kSide + n)] * small[static_cast<size_t>(n * kSide + c)];
      by_rows[static_cast<size_t>(k * kSide + c)] = v;
    }
  std::array<double, kLow * kLow> low{};
  for (int k = 0; k < kLow; ++k)
    for (int l = 0; l < kLow; ++l) {
      double v = 0;
      for (int n = 0; n < kSide; ++n) v += cosines[static_cast<size_t>(l * kSide + n)] * by_rows[static_cast<size_t>(k * kSide + n)];
      low[static_cast<size_t>(k * kLow + l)] = v;
    }
  std::array<double, kLow * kLow> sorted = low;
  std::sort(sorted.begin(), sorted.end());
  const double median = (sorted[31] + sorted[32]) / 2;
  uint64_t h = 0;
  for (double v : low) h = (h << 1) | (v > median ? 1u : 0u);
  return h;
}

}  // namespace

PictureFingerprint fingerprint(const Image& img) {
  PictureFingerprint f;
  f.width = img.width;
  f.height = img.height;
  uint64_t h = mix64(static_cast<uint64_t>(img.width) << 32 | static_cast<uint32_t>(img.height));
  size_t i = 0;
  for (; i + 8 <= img.pixels.size(); i += 8) {
    uint64_t word = 0;
    for (int b = 0; b < 8; ++b) word |= static_cast<uint64_t>(img.pixels[i + b]) << (8 * b);
    h = mix64(h ^ word) + 0x9E3779B97F4A7C15ULL;
  }
  for (; i < img.pixels.size(); ++i) h = mix64(h ^ img.pixels[i]) + 0x9E3779B97F4A7C15ULL;
  f.exact = h;
  const std::vector<double> small = grey_small(img);
  f.thumbnail = to_bytes(small);
  f.phash = dct_hash(small);
  const std::vector<double> g = grey(img);
  double sum = 0, sq = 0;
  for (double v : g) sum += v, sq += v * v;
  const double n = static_cast<double>(std::max<size_t>(g.size(), 1));
  f.blank = sq / n - (sum / n) * (sum / n) < 4.0;
  return f;
}

std::vector<std::pair<size_t, size_t>> hash_neighbours(const std::vector<uint64_t>& hashes, const std::vector<bool>& valid, int max_distance) {
  // pigeonhole: split the 64 bits into max_distance + 1 chunks; two hashes within max_distance bits agree
  // exactly on at least one chunk, so candidates are the pairs sharing a chunk value.
  const int chunks = std::clamp(max_distance + 1, 1, 64);
  std::set<std::pair<size_t, size_t>> found;
  for (int c = 0; c < chunks; ++c) {
    const int lo = 64 * c / chunks, hi = 64 * (c + 1) / chunks;
    const uint64_t mask = (hi - lo == 64 ? ~0ULL : ((1ULL << (hi - lo)) - 1)) << lo;
    std::unordered_map<uint64_t, std::vector<size_t>> buckets;
    for (size_t i = 0; i < hashes.size(); ++i)
      if (valid[i]) buckets[hashes[i] & mask].push_back(i);
    for (auto& [key, ids] : buckets)
      for (size_t a = 0; a < ids.size(); ++a)
        for (size_t b = a + 1; b < ids.size(); ++b)
          if (std::popcount(hashes[ids[a]] ^ hashes[ids[b]]) <= max_distance) found.emplace(ids[a], ids[b]);
  }
  return {found.begin(), found.end()};
}

nlohmann::json audit_pictures(const std::vector<AuditPicture>& rows, const PictureAuditOptions& o) {
  nlohmann::ordered_json rep;
  const std::string first = rows.empty() ? "" : rows[0].source;
  auto in_first = [&](size_t i) { return rows[i].source == first; };
  std::map<std::string, int64_t> counts;
  size_t n_first = 0;
  for (size_t i = 0; i < rows.size(); ++i)
    if (in_first(i)) ++counts[rows[i].label], ++n_first;
  int64_t lo = INT64_MAX, hi = 0;
  for (auto& [l, c] : counts) lo = std::min(lo, c), hi = std::max(hi, c);
  rep["kind"] = "pictures";
  rep["rows"] = n_first;
  rep["classes"] = counts;
  rep["imbalance_ratio"] = counts.empty() ? 0.0 : static_cast<double>(hi) / static_cast<double>(lo);
  // unreadable, blank, tiny; sizes
  nlohmann::ordered_json bad = nlohmann::ordered_json::array(), blank = nlohmann::ordered_json::array(), tiny = nlohmann::ordered_json::array();
  size_t n_bad = 0, n_blank = 0, n_tiny = 0;
  std::vector<int> widths, heights;
  std::vector<bool> ok(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& p = rows[i].print;
    ok[i] = p.error.empty();
    if (!ok[i]) {
      if (n_bad++ < o.max_listed) bad.push_back({{"row", i}, {"file", rows[i].name}, {"reason", p.error}});
      continue;
    }
    if (in_first(i)) widths.push_back(p.width), heights.push_back(p.height);
    if (p.blank && n_blank++ < o.max_listed) blank.push_back(ref(rows[i], i));
    if (std::min(p.width, p.height) < o.min_side && n_tiny++ < o.max_listed) {
      auto r = ref(rows[i], i);
      r["size"] = std::to_string(p.width) + "x" + std::to_string(p.height);
      tiny.push_back(r);
    }
  }
  rep["unreadable"] = {{"count", n_bad}, {"examples", bad}};
  rep["blank"] = {{"count", n_blank}, {"examples", blank}};
  rep["tiny"] = {{"count", n_tiny}, {"min_side", o.min_side}, {"examples", tiny}};
  if (!widths.empty()) {
    auto stats = [](std::vector<int> v) {
      std::sort(v.begin(), v.end());
      return nlohmann::ordered_json{{"min", v.front()}, {"median", v[v.size() / 2]}, {"max", v.back()}};
    };
    rep["sizes"] = {{"width", stats(widths)}, {"height", stats(heights)}};
  }
  // exact duplicates, conflicting labels, exact leakage: equal pixel hashes
  std::vector<std::string> keys(rows.size()), labels(rows.size());
  std::vector<bool> first_set(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    if (ok[i]) keys[i] = fmt::format("{:016x}", rows[i].print.exact);
    labels[i] = rows[i].label;
    first_set[i] = in_first(i);
  }
  const nlohmann::ordered_json same = equal_key_findings(keys, first_set, labels, [&](size_t i) { return ref(rows[i], i); }, o.max_listed);
  rep["exact_duplicates"] = same["exact_duplicates"];
  rep["conflicting_labels"] = same["conflicting_labels"];
  // near duplicates: perceptual hashes within max_distance bits, pixels not identical
  std::vector<uint64_t> ph(rows.size());
  std::vector<bool> usable(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    ph[i] = rows[i].print.phash;
    usable[i] = ok[i] && !rows[i].print.blank;  // blank pictures all hash alike; they are listed above
  }
  struct Near {
    int distance;
    double similarity;
    size_t i, j;
  };
  std::vector<Near> near, near_leak;
  for (auto [i, j] : hash_neighbours(ph, usable, o.max_distance)) {
    if (rows[i].print.exact == rows[j].print.exact) continue;
    const double sim = thumbnail_similarity(rows[i].print.thumbnail, rows[j].print.thumbnail, 1);
    if (sim < o.min_similarity) continue;
    const Near n{std::popcount(ph[i] ^ ph[j]), sim, i, j};
    if (in_first(i) && in_first(j)) near.push_back(n);
    else if (in_first(i) != in_first(j)) near_leak.push_back(n);
  }
  auto closest_first = [](std::vector<Near>& v) {
    std::stable_sort(v.begin(), v.end(), [](const Near& a, const Near& b) { return a.similarity > b.similarity; });
  };
  closest_first(near);
  closest_first(near_leak);
  auto listed = [&](const std::vector<Near>& v) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (size_t k = 0; k < v.size() && k < o.max_listed; ++k)
      out.push_back({{"distance", v[k].distance}, {"similarity", std::round(v[k].similarity * 1e4) / 1e4}, {"a", ref(rows[v[k].i], v[k].i)},
                     {"b", ref(rows[v[k].j], v[k].j)}});
    return out;
  };
  size_t near_conflict = 0;
  for (const auto& n : near) near_conflict += rows[n.i].label != rows[n.j].label;
  rep["near_duplicates"] = {{"pairs", near.size()}, {"with_different_labels", near_conflict}, {"max_distance", o.max_distance},
                            {"min_similarity", o.min_similarity}, {"examples", listed(near)}};
  if (near.size() > n_first / 4)  // a dense set: most pictures have look-alikes at 32 x 32 (e.g. centred silhouettes)
    rep["near_duplicates"]["note"] = fmt::format("{} pairs for {} pictures: many pictures in this set look alike at 32 x 32 pixels; the "
                                                 "closest pairs are listed first; --distance {} or --similarity 0.98 is stricter",
                                                 near.size(), n_first, std::max(0, o.max_distance - 3));
  if (n_first != rows.size())
    rep["leakage"] = {{"exact", same["leak_groups"]}, {"near", near_leak.size()}, {"examples", same["leaks"]}, {"near_examples", listed(near_leak)}};
  return nlohmann::json(rep);
}

}  // namespace kotsu
