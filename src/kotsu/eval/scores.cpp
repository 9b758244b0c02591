#include "kotsu/eval/scores.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "kotsu/core/error.hpp"
#include "kotsu/eval/metrics.hpp"

namespace kotsu {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void check_sizes(size_t n, size_t probs, int64_t k) {
  if (k < 1 || probs != n * static_cast<size_t>(k)) throw Error("", "scores", "probabilities are not n x classes");
}

// scikit-learn's _binary_clf_curve: cumulative true and false positives at each distinct score, from the
// highest score down.
void binary_curve(const std::vector<int>& y, const std::vector<double>& score, std::vector<int64_t>& tps, std::vector<int64_t>& fps,
                  std::vector<double>* thresholds = nullptr) {
  if (y.size() != score.size()) throw Error("", "scores", "targets and scores differ in length");
  std::vector<size_t> order(y.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return score[a] > score[b]; });
  int64_t tp = 0, fp = 0;
  tps.clear();
  fps.clear();
  if (thresholds) thresholds->clear();
  for (size_t i = 0; i < order.size(); ++i) {
    (y[order[i]] ? tp : fp) += 1;
    if (i + 1 == order.size() || score[order[i + 1]] != score[order[i]]) {
      tps.push_back(tp);
      fps.push_back(fp);
      if (thresholds) thresholds->push_back(score[order[i]]);
    }
  }
}

std::vector<int> one_vs_rest(const std::vector<int64_t>& y, int64_t c) {
  std::vector<int> out(y.size());
  for (size_t i = 0; i < y.size(); ++i) out[i] = y[i] == c;
  return out;
}

std::vector<double> column(const std::vector<double>& m, size_t n, int64_t k, int64_t c) {
  std::vector<double> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = m[i * static_cast<size_t>(k) + static_cast<size_t>(c)];
  return out;
}

// Means over the classes whose value is defined; weights = positives per class.
PerClassScore averaged(std::vector<double> values, const std::vector<int64_t>& support) {
  PerClassScore s;
  double sum = 0, wsum = 0, w = 0;
  size_t defined = 0;
  for (size_t c = 0; c < values.size(); ++c) {
    if (std::isnan(values[c])) continue;
    ++defined;
    sum += values[c];
    wsum += static_cast<double>(support[c]) * values[c];
    w += static_cast<double>(support[c]);
  }
  s.macro = defined ? sum / static_cast<double>(defined) : kNaN;
  s.weighted = w > 0 ? wsum / w : kNaN;
  s.per_class = std::move(values);
  return s;
}

template <class Binary>
PerClassScore per_class(const std::vector<int64_t>& y, const std::vector<double>& probs, int64_t k, Binary fn) {
  check_sizes(y.size(), probs.size(), k);
  std::vector<double> v;
  std::vector<int64_t> support;
  for (int64_t c = 0; c < k; ++c) {
    auto yc = one_vs_rest(y, c);
    support.push_back(std::count(yc.begin(), yc.end(), 1));
    v.push_back(fn(yc, column(probs, y.size(), k, c)));
  }
  return averaged(std::move(v), support);
}

double quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return kNaN;
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

nlohmann::json number(double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); }

// A curve for plotting: at most max_points points (evenly spaced along the curve's index, first and last
// kept), values rounded to 4 decimals. Undefined curves (a class without positives) are left out.
nlohmann::ordered_json plotted(const Curve& c, const std::string& label, double area, size_t max_points = 200) {
  nlohmann::ordered_json xs = nlohmann::ordered_json::array(), ys = nlohmann::ordered_json::array();
  const size_t n = c.x.size();
  auto round4 = [](double v) { return std::round(v * 1e4) / 1e4; };
  size_t last = n;  // index of the last point emitted
  for (size_t j = 0; j < std::min(n, max_points); ++j) {
    const size_t i = n <= max_points ? j : static_cast<size_t>(std::llround(static_cast<double>(j) * static_cast<double>(n - 1) / static_cast<double>(max_points - 1)));
    if (i == last) continue;
    last = i;
    xs.push_back(round4(c.x[i]));
    ys.push_back(round4(c.y[i]));
  }
  return {{"label", label}, {"area", number(area)}, {"x", xs}, {"y", ys}};
}

}  // namespace

double roc_auc_binary(const std::vector<int>& y, const std::vector<double>& score) {
  std::vector<int64_t> tps, fps;
  binary_curve(y, score, tps, fps);
  if (tps.empty() || tps.back() == 0 || fps.back() == 0) return kNaN;  // one class only
  // trapezoids between consecutive (fpr, tpr) points from (0, 0), in integers until the last division
  double area2 = 0;
  int64_t tp0 = 0, fp0 = 0;
  for (size_t i = 0; i < tps.size(); ++i) {
    area2 += static_cast<double>(fps[i] - fp0) * static_cast<double>(tps[i] + tp0);
    tp0 = tps[i];
    fp0 = fps[i];
  }
  return area2 / (2.0 * static_cast<double>(tps.back()) * static_cast<double>(fps.back()));
}

double average_precision_binary(const std::vector<int>& y, const std::vector<double>& score) {
  std::vector<int64_t> tps, fps;
  binary_curve(y, score, tps, fps);
  if (tps.empty() || tps.back() == 0) return 0.0;  // no positive: scikit-learn's 0 (with a warning)
  const auto p = static_cast<double>(tps.back());
  double ap = 0;
  int64_t tp0 = 0;
  for (size_t i = 0; i < tps.size(); ++i) {
    ap += (static_cast<double>(tps[i]) / p - static_cast<double>(tp0) / p) * (static_cast<double>(tps[i]) / static_cast<double>(tps[i] + fps[i]));
    tp0 = tps[i];
  }
  return ap;
}

Curve roc_curve(const std::vector<int>& y, const std::vector<double>& score) {
  std::vector<int64_t> tps, fps;
  std::vector<double> th;
  binary_curve(y, score, tps, fps, &th);
  Curve c;
  if (tps.empty()) return c;
  std::vector<size_t> keep;  // drop_intermediate: points collinear with both neighbours
  for (size_t i = 0; i < tps.size(); ++i) {
    const bool corner = i == 0 || i + 1 == tps.size() || tps.size() <= 2 ||
                        fps[i + 1] - 2 * fps[i] + fps[i - 1] != 0 || tps[i + 1] - 2 * tps[i] + tps[i - 1] != 0;
    if (corner) keep.push_back(i);
  }
  const double p = static_cast<double>(tps.back()), q = static_cast<double>(fps.back());
  c.x.push_back(q > 0 ? 0.0 : kNaN);
  c.y.push_back(p > 0 ? 0.0 : kNaN);
  c.thresholds.push_back(th[keep[0]] + 1);
  for (size_t i : keep) {
    c.x.push_back(q > 0 ? static_cast<double>(fps[i]) / q : kNaN);
    c.y.push_back(p > 0 ? static_cast<double>(tps[i]) / p : kNaN);
    c.thresholds.push_back(th[i]);
  }
  return c;
}

Curve precision_recall_curve(const std::vector<int>& y, const std::vector<double>& score) {
  std::vector<int64_t> tps, fps;
  std::vector<double> th;
  binary_curve(y, score, tps, fps, &th);
  Curve c;
  for (size_t r = tps.size(); r-- > 0;) {  // recall decreasing, as scikit-learn returns it
    const int64_t ps = tps[r] + fps[r];
    c.y.push_back(ps ? static_cast<double>(tps[r]) / static_cast<double>(ps) : 0.0);
    c.x.push_back(tps.back() ? static_cast<double>(tps[r]) / static_cast<double>(tps.back()) : 1.0);
    c.thresholds.push_back(th[r]);
  }
  c.y.push_back(1.0);
  c.x.push_back(0.0);
  return c;
}

PerClassScore roc_auc_ovr(const std::vector<int64_t>& y, const std::vector<double>& probs, int64_t k) {
  return per_class(y, probs, k, roc_auc_binary);
}

PerClassScore average_precision_ovr(const std::vector<int64_t>& y, const std::vector<double>& probs, int64_t k) {
  return per_class(y, probs, k, average_precision_binary);
}

PerClassScore average_precision_multilabel(const std::vector<int>& Y, const std::vector<double>& scores, int64_t k) {
  if (k < 1 || Y.size() != scores.size() || Y.size() % static_cast<size_t>(k) != 0)
    throw Error("", "scores", "targets and scores are not both n x classes");
  const size_t n = Y.size() / static_cast<size_t>(k);
  std::vector<double> v;
  std::vector<int64_t> support;
  for (int64_t c = 0; c < k; ++c) {
    std::vector<int> yc(n);
    for (size_t i = 0; i < n; ++i) yc[i] = Y[i * static_cast<size_t>(k) + static_cast<size_t>(c)] != 0;
    support.push_back(std::count(yc.begin(), yc.end(), 1));
    v.push_back(average_precision_binary(yc, column(scores, n, k, c)));
  }
  return averaged(std::move(v), support);
}

double top_k_accuracy(const std::vector<int64_t>& y, const std::vector<double>& probs, int64_t k, int64_t k_top) {
  check_sizes(y.size(), probs.size(), k);
  if (y.empty()) return kNaN;
  int64_t hits = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    const double* row = probs.data() + i * static_cast<size_t>(k);
    const double s = row[y[i]];
    int64_t ahead = 0;  // classes ranked above the true one
    for (int64_t j = 0; j < k; ++j) ahead += row[j] > s || (row[j] == s && j > y[i]);
    hits += ahead < k_top;
  }
  return static_cast<double>(hits) / static_cast<double>(y.size());
}

double log_loss(const std::vector<int64_t>& y, const std::vector<double>& probs, int64_t k) {
  check_sizes(y.size(), probs.size(), k);
  if (y.empty()) return kNaN;
  const double eps = std::numeric_limits<double>::epsilon();
  double total = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    const double* row = probs.data() + i * static_cast<size_t>(k);
    double sum = 0;
    for (int64_t j = 0; j < k; ++j) sum += std::clamp(row[j], eps, 1 - eps);
    total -= std::log(std::clamp(row[y[i]], eps, 1 - eps) / sum);
  }
  return total / static_cast<double>(y.size());
}

double expected_calibration_error(const std::vector<int64_t>& y, const std::vector<double>& probs, int64_t k, int64_t bins,
                                  std::vector<ReliabilityBin>* diagram) {
  check_sizes(y.size(), probs.size(), k);
  if (bins < 1) throw Error("", "scores", "needs at least one bin");
  std::vector<ReliabilityBin> d(static_cast<size_t>(bins));
  const double step = 1.0 / static_cast<double>(bins);  // edges as numpy.linspace(0, 1, bins + 1)
  for (int64_t b = 0; b < bins; ++b) {
    d[static_cast<size_t>(b)].low = static_cast<double>(b) * step;
    d[static_cast<size_t>(b)].high = b + 1 == bins ? 1.0 : static_cast<double>(b + 1) * step;
  }
  std::vector<double> conf_sum(d.size(), 0), correct(d.size(), 0);
  for (size_t i = 0; i < y.size(); ++i) {
    const double* row = probs.data() + i * static_cast<size_t>(k);
    const auto top = static_cast<int64_t>(std::max_element(row, row + k) - row);  // first maximum, as numpy.argmax
    for (size_t b = 0; b < d.size(); ++b)
      if (row[top] > d[b].low && row[top] <= d[b].high) {
        ++d[b].count;
        conf_sum[b] += row[top];
        correct[b] += top == y[i];
        break;
      }
  }
  double ece = 0;
  for (size_t b = 0; b < d.size(); ++b) {
    if (d[b].count == 0) continue;
    d[b].confidence = conf_sum[b] / static_cast<double>(d[b].count);
    d[b].accuracy = correct[b] / static_cast<double>(d[b].count);
    ece += static_cast<double>(d[b].count) / static_cast<double>(y.size()) * std::abs(d[b].accuracy - d[b].confidence);
  }
  if (diagram) *diagram = std::move(d);
  return y.empty() ? kNaN : ece;
}

Interval bootstrap_interval(size_t n, const std::function<double(const std::vector<size_t>&)>& metric, int64_t rounds,
                            double level, uint64_t seed) {
  if (n == 0 || rounds < 1 || level <= 0 || level >= 1) throw Error("", "bootstrap", "needs examples, rounds >= 1 and a level in (0, 1)");
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<size_t> pick(0, n - 1);
  std::vector<double> values;
  std::vector<size_t> idx(n);
  for (int64_t r = 0; r < rounds; ++r) {
    for (auto& i : idx) i = pick(rng);
    const double v = metric(idx);
    if (!std::isnan(v)) values.push_back(v);  // e.g. ROC-AUC of a resample with one class only
  }
  std::sort(values.begin(), values.end());
  return {quantile(values, (1 - level) / 2), quantile(values, (1 + level) / 2)};
}

nlohmann::json score_report(const std::vector<int64_t>& y, const std::vector<double>& probs, int64_t k,
                            const std::vector<std::string>& labels, int64_t bootstrap_rounds, uint64_t seed) {
  check_sizes(y.size(), probs.size(), k);
  if (labels.size() != static_cast<size_t>(k)) throw Error("", "scores", "one label per class needed");
  nlohmann::ordered_json j;
  auto per_class_json = [&](const PerClassScore& s) {
    nlohmann::ordered_json pc = nlohmann::ordered_json::object();
    for (size_t c = 0; c < labels.size(); ++c) pc[labels[c]] = number(s.per_class[c]);
    return pc;
  };
  const PerClassScore auc = roc_auc_ovr(y, probs, k);
  const PerClassScore ap = average_precision_ovr(y, probs, k);
  if (k == 2) j["roc_auc"] = number(auc.per_class[1]);  // binary: the score of the second class, as scikit-learn
  else j["roc_auc"] = {{"macro", number(auc.macro)}, {"weighted", number(auc.weighted)}, {"per_class", per_class_json(auc)}};
  j["average_precision"] = {{"mean", number(ap.macro)}, {"weighted", number(ap.weighted)}, {"per_class", per_class_json(ap)}};
  // Curves for the HTML report: the positive class of a binary task; per class (up to 20 classes) and the
  // micro average (all one-vs-rest decisions pooled) otherwise.
  nlohmann::ordered_json roc = nlohmann::ordered_json::array(), prc = nlohmann::ordered_json::array();
  auto add_curves = [&](const std::vector<int>& yc, const std::vector<double>& sc, const std::string& label, double auc_v, double ap_v) {
    if (std::count(yc.begin(), yc.end(), 1) == 0) return;
    if (!std::isnan(auc_v)) roc.push_back(plotted(roc_curve(yc, sc), label, auc_v));
    prc.push_back(plotted(precision_recall_curve(yc, sc), label, ap_v));
  };
  if (k == 2) {
    add_curves(one_vs_rest(y, 1), column(probs, y.size(), k, 1), labels[1], auc.per_class[1], ap.per_class[1]);
  } else {
    std::vector<int> flat_y;
    flat_y.reserve(probs.size());
    for (int64_t yi : y)
      for (int64_t c = 0; c < k; ++c) flat_y.push_back(yi == c);
    add_curves(flat_y, probs, "micro average", roc_auc_binary(flat_y, probs), average_precision_binary(flat_y, probs));
    if (k <= 20)
      for (int64_t c = 0; c < k; ++c)
        add_curves(one_vs_rest(y, c), column(probs, y.size(), k, c), labels[static_cast<size_t>(c)], auc.per_class[static_cast<size_t>(c)],
                   ap.per_class[static_cast<size_t>(c)]);
  }
  nlohmann::ordered_json topk = nlohmann::ordered_json::object();
  for (int64_t t : {2, 3, 5})
    if (t < k) topk[std::to_string(t)] = top_k_accuracy(y, probs, k, t);
  if (!topk.empty()) j["top_k_accuracy"] = topk;
  j["log_loss"] = number(log_loss(y, probs, k));
  std::vector<ReliabilityBin> diagram;
  j["ece"] = number(expected_calibration_error(y, probs, k, 15, &diagram));
  nlohmann::ordered_json rel = nlohmann::ordered_json::array();
  for (const auto& b : diagram)
    rel.push_back({{"low", b.low}, {"high", b.high}, {"count", b.count}, {"confidence", b.confidence}, {"accuracy", b.accuracy}});
  j["reliability"] = rel;
  if (bootstrap_rounds > 0 && !y.empty()) {
    std::vector<int64_t> pred(y.size());
    for (size_t i = 0; i < y.size(); ++i) {
      const double* row = probs.data() + i * static_cast<size_t>(k);
      pred[i] = std::max_element(row, row + k) - row;
    }
    auto resample = [&](const std::vector<size_t>& idx, std::vector<int64_t>& ys, std::vector<int64_t>& ps, std::vector<double>* pr) {
      ys.clear();
      ps.clear();
      if (pr) pr->clear();
      for (size_t i : idx) {
        ys.push_back(y[i]);
        ps.push_back(pred[i]);
        if (pr) pr->insert(pr->end(), probs.begin() + static_cast<long>(i * static_cast<size_t>(k)), probs.begin() + static_cast<long>((i + 1) * static_cast<size_t>(k)));
      }
    };
    std::vector<int64_t> ys, ps;
    std::vector<double> pr;
    nlohmann::ordered_json ci;
    auto put = [&](const char* name, Interval iv) { ci[name] = {number(iv.low), number(iv.high)}; };
    put("accuracy", bootstrap_interval(y.size(), [&](const std::vector<size_t>& idx) {
      resample(idx, ys, ps, nullptr);
      return classification_metrics(ys, ps, k).accuracy;
    }, bootstrap_rounds, 0.95, seed));
    put("macro_f1", bootstrap_interval(y.size(), [&](const std::vector<size_t>& idx) {
      resample(idx, ys, ps, nullptr);
      return classification_metrics(ys, ps, k).macro_f1;
    }, bootstrap_rounds, 0.95, seed));
    if (y.size() * static_cast<size_t>(k) <= 200000)  // k sorts of n scores per round: skipped when that is slow
      put("roc_auc", bootstrap_interval(y.size(), [&](const std::vector<size_t>& idx) {
      resample(idx, ys, ps, &pr);
      return k == 2 ? roc_auc_binary(one_vs_rest(ys, 1), column(pr, ys.size(), k, 1)) : roc_auc_ovr(ys, pr, k).macro;
    }, bootstrap_rounds, 0.95, seed));
    j["confidence_95"] = ci;
    j["bootstrap_rounds"] = bootstrap_rounds;
  }
  j["curves"] = {{"roc", roc}, {"pr", prc}};
  return nlohmann::json(j);
}

std::string scores_text(const nlohmann::json& r) {
  auto num = [](const nlohmann::json& v) { return v.is_number() ? fmt::format("{:.4f}", v.get<double>()) : std::string("undefined"); };
  auto ci = [&](const char* name) {
    if (!r.contains("confidence_95") || !r["confidence_95"].contains(name)) return std::string();
    const auto& iv = r["confidence_95"][name];
    return fmt::format("  (95% CI {} .. {})", num(iv[0]), num(iv[1]));
  };
  std::string s;
  if (r.contains("confidence_95")) {
    s += fmt::format("accuracy 95% CI {} .. {}; macro-F1 95% CI {} .. {} ({} bootstrap resamples)\n", num(r["confidence_95"]["accuracy"][0]),
                     num(r["confidence_95"]["accuracy"][1]), num(r["confidence_95"]["macro_f1"][0]), num(r["confidence_95"]["macro_f1"][1]),
                     r.value("bootstrap_rounds", 0));
  }
  if (r.contains("roc_auc")) {
    const auto& a = r["roc_auc"];
    s += a.is_object() ? fmt::format("ROC-AUC (one-vs-rest) macro {} weighted {}{}\n", num(a["macro"]), num(a["weighted"]), ci("roc_auc"))
                       : fmt::format("ROC-AUC {}{}\n", num(a), ci("roc_auc"));
  }
  if (r.contains("average_precision")) s += fmt::format("mean average precision {}\n", num(r["average_precision"]["mean"]));
  if (r.contains("top_k_accuracy"))
    for (auto& [k, v] : r["top_k_accuracy"].items()) s += fmt::format("top-{} accuracy {}\n", k, num(v));
  if (r.contains("ece")) s += fmt::format("expected calibration error {} (15 bins)\n", num(r["ece"]));
  return s;
}

}  // namespace kotsu
