#include "kotsu/eval/drift.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "kotsu/core/error.hpp"

namespace kotsu {

namespace {
constexpr double kFloor = 1e-4;

std::vector<double> shares(const std::vector<double>& counts, double total) {
  std::vector<double> out(counts.size());
  for (size_t i = 0; i < counts.size(); ++i) out[i] = counts[i] / total;
  return out;
}
}  // namespace

std::string PsiResult::verdict() const {
  if (psi < 0.1) return "stable";
  if (psi < 0.25) return "moderate shift";
  return "major shift";
}

double psi_of_shares(const std::vector<double>& reference, const std::vector<double>& live) {
  double psi = 0;
  for (size_t i = 0; i < reference.size(); ++i) {
    const double r = std::max(reference[i], kFloor), l = std::max(live.at(i), kFloor);
    psi += (l - r) * std::log(l / r);
  }
  return psi;
}

PsiResult psi_numeric(const std::vector<double>& reference, const std::vector<double>& live, const std::string& what, int bins) {
  if (reference.empty()) throw Error(what, "reference", "no values to compare against");
  if (live.empty()) throw Error(what, "live", "no values logged");
  if (bins < 2) throw Error(what, "bins", "must be >= 2");
  std::vector<double> sorted = reference;
  std::sort(sorted.begin(), sorted.end());
  // upper edges at the reference's quantiles k/bins (nearest rank), duplicates removed: a bin holds (edge[i-1], edge[i]]
  std::vector<double> edges;
  for (int k = 1; k < bins; ++k) {
    const size_t at = std::min(sorted.size() - 1, static_cast<size_t>(std::ceil(static_cast<double>(k) * sorted.size() / bins)) - 1);
    if (edges.empty() || sorted[at] > edges.back()) edges.push_back(sorted[at]);
  }
  if (!edges.empty() && edges.back() >= sorted.back()) edges.pop_back();  // the last bin is "> last edge"
  const size_t n = edges.size() + 1;
  auto bin_of = [&](double v) { return static_cast<size_t>(std::lower_bound(edges.begin(), edges.end(), v) - edges.begin()); };
  std::vector<double> rc(n, 0), lc(n, 0);
  for (double v : reference) ++rc[bin_of(v)];
  for (double v : live) ++lc[bin_of(v)];
  PsiResult r;
  r.reference = shares(rc, static_cast<double>(reference.size()));
  r.live = shares(lc, static_cast<double>(live.size()));
  for (size_t i = 0; i < n; ++i) {
    if (n == 1) r.bins.push_back("all");
    else if (i == 0) r.bins.push_back(fmt::format("<= {:.4g}", edges[0]));
    else if (i + 1 == n) r.bins.push_back(fmt::format("> {:.4g}", edges.back()));
    else r.bins.push_back(fmt::format("({:.4g}, {:.4g}]", edges[i - 1], edges[i]));
  }
  r.psi = psi_of_shares(r.reference, r.live);
  return r;
}

PsiResult psi_categorical(const std::vector<std::string>& reference, const std::vector<std::string>& live, const std::string& what) {
  if (reference.empty()) throw Error(what, "reference", "no values to compare against");
  if (live.empty()) throw Error(what, "live", "no values logged");
  std::set<std::string> cats(reference.begin(), reference.end());
  cats.insert(live.begin(), live.end());
  PsiResult r;
  r.bins.assign(cats.begin(), cats.end());
  std::vector<double> rc(r.bins.size(), 0), lc(r.bins.size(), 0);
  auto index = [&](const std::string& c) { return static_cast<size_t>(std::lower_bound(r.bins.begin(), r.bins.end(), c) - r.bins.begin()); };
  for (const auto& c : reference) ++rc[index(c)];
  for (const auto& c : live) ++lc[index(c)];
  r.reference = shares(rc, static_cast<double>(reference.size()));
  r.live = shares(lc, static_cast<double>(live.size()));
  r.psi = psi_of_shares(r.reference, r.live);
  return r;
}

}  // namespace kotsu
