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
  // values outside the reference's range get their own bins (the reference has none there), so that a
  // shift beyond it shows even when the reference is one bin (a constant length)
  const double lo = sorted.front(), hi = sorted.back();
  bool below = false, above = false;
  for (double v : live) below = below || v < lo, above = above || v > hi;
  const size_t inner = edges.size() + 1, first = below ? 1 : 0, n = inner + first + (above ? 1 : 0);
  auto bin_of = [&](double v) {
    if (below && v < lo) return size_t(0);
    if (above && v > hi) return n - 1;
    return first + static_cast<size_t>(std::lower_bound(edges.begin(), edges.end(), v) - edges.begin());
  };
  std::vector<double> rc(n, 0), lc(n, 0);
  for (double v : reference) ++rc[bin_of(v)];
  for (double v : live) ++lc[bin_of(v)];
  PsiResult r;
  r.reference = shares(rc, static_cast<double>(reference.size()));
  r.live = shares(lc, static_cast<double>(live.size()));
  if (below) r.bins.push_back(fmt::format("< {:.4g} (below the reference)", lo));
  for (size_t i = 0; i < inner; ++i) {
    if (inner == 1) r.bins.push_back("all");
    else if (i == 0) r.bins.push_back(fmt::format("<= {:.4g}", edges[0]));
    else if (i + 1 == inner) r.bins.push_back(fmt::format("> {:.4g}", edges.back()));
    else r.bins.push_back(fmt::format("({:.4g}, {:.4g}]", edges[i - 1], edges[i]));
  }
  if (above) r.bins.push_back(fmt::format("> {:.4g} (above the reference)", hi));
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

namespace {
int severity(const std::string& verdict) { return verdict == "stable" ? 0 : verdict == "moderate shift" ? 1 : 2; }

nlohmann::ordered_json psi_json(const PsiResult& r) {
  nlohmann::ordered_json bins = nlohmann::ordered_json::array();
  for (size_t i = 0; i < r.bins.size(); ++i) bins.push_back({{"bin", r.bins[i]}, {"reference", r.reference[i]}, {"live", r.live[i]}});
  return {{"psi", r.psi}, {"verdict", r.verdict()}, {"bins", bins}};
}
}  // namespace

std::string DriftReport::verdict() const {
  std::string worst = label.verdict();
  for (const auto* r : {&confidence, &length})
    if (severity(r->verdict()) > severity(worst)) worst = r->verdict();
  return worst;
}

nlohmann::ordered_json DriftReport::to_json() const {
  return {{"reference_inputs", reference_n}, {"live_inputs", live_n},  {"verdict", verdict()}, {"retrain_recommended", retrain()},
          {"predicted_label", psi_json(label)}, {"confidence", psi_json(confidence)}, {"input_length", psi_json(length)}};
}

std::string DriftReport::text() const {
  std::string out = fmt::format("drift of {} logged inputs against {} reference inputs (population stability index):\n", live_n, reference_n);
  for (const auto& [name, r] : {std::pair<const char*, const PsiResult*>{"predicted label", &label}, {"confidence", &confidence},
                                {"input length", &length}})
    out += fmt::format("  {:<16} PSI {:.3f}  {}\n", name, r->psi, r->verdict());
  const std::string v = verdict();
  out += v == "stable" ? "stable (every PSI < 0.1): no action needed\n"
         : v == "moderate shift" ? "moderate shift (a PSI in [0.1, 0.25)): watch it; retrain if it grows\n"
                                 : "major shift (a PSI >= 0.25): retrain recommended\n";
  return out;
}

DriftReport drift_report(const DriftSample& reference, const DriftSample& live) {
  for (const auto* s : {&reference, &live})
    if (s->confidence.size() != s->size() || s->length.size() != s->size())
      throw Error("drift", "sample", "labels, confidences and lengths differ in number");
  DriftReport r;
  r.reference_n = reference.size();
  r.live_n = live.size();
  r.label = psi_categorical(reference.labels, live.labels, "predicted label");
  r.confidence = psi_numeric(reference.confidence, live.confidence, "confidence");
  r.length = psi_numeric(reference.length, live.length, "input length");
  return r;
}

}  // namespace kotsu
