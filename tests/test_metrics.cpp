// eval/metrics against scikit-learn's values on the same random predictions (fixtures/make_metrics_reference.py).
#include "kotsu/eval/metrics.hpp"

#include <cmath>
#include <numeric>
#include <random>

#include "kotsu/core/error.hpp"
#include "kotsu/eval/decision.hpp"
#include "kotsu/eval/scores.hpp"

#include "kotsu/io/file.hpp"
#include "test_util.hpp"

using namespace kotsu;

// The decision rule of --target-recall: the class whenever its probability reaches the threshold, else the
// most probable other class; the threshold is the highest whose recall reaches the target, and the recall
// and precision reported are those of that threshold.
TEST(Decision, ThresholdForATargetRecallAndTheRuleThatUsesIt) {
  const float row[3] = {0.5f, 0.3f, 0.2f};
  EXPECT_EQ(decide(row, 3, {}), 0);
  EXPECT_EQ(decide(row, 3, {2, 0.2}), 2);   // class 2 reaches its threshold
  EXPECT_EQ(decide(row, 3, {2, 0.25}), 0);  // it does not: the most probable class
  EXPECT_EQ(decide(row, 3, {0, 0.6}), 1);   // the most probable misses its threshold: the most probable other class
  // 20 examples of class 1 with p = 0.05, 0.10, ..., 1.00, and 10 of class 0 with p(1) = 0.02, 0.12, ..., 0.92
  std::vector<float> probs;
  std::vector<int64_t> y;
  for (int i = 1; i <= 20; ++i) probs.insert(probs.end(), {1 - 0.05f * i, 0.05f * i}), y.push_back(1);
  for (int i = 0; i < 10; ++i) probs.insert(probs.end(), {1 - (0.02f + 0.1f * i), 0.02f + 0.1f * i}), y.push_back(0);
  const ThresholdChoice t = choose_threshold(probs, 2, y, 1, 0.95, "v");
  EXPECT_FLOAT_EQ(static_cast<float>(t.threshold), 0.10f);  // the 19th highest of 20: 19 / 20 = 0.95 caught
  EXPECT_EQ(t.positives, 20u);
  EXPECT_DOUBLE_EQ(t.recall, 0.95);
  EXPECT_DOUBLE_EQ(t.precision, 19.0 / (19 + 9));  // class-0 examples at 0.12 .. 0.92 are flagged too
  const ThresholdChoice all = choose_threshold(probs, 2, y, 1, 1.0, "v");
  EXPECT_FLOAT_EQ(static_cast<float>(all.threshold), 0.05f);
  EXPECT_DOUBLE_EQ(all.recall, 1.0);
  EXPECT_FLOAT_EQ(static_cast<float>(choose_threshold(probs, 2, y, 1, 0.5, "v").threshold), 0.55f);  // the 10th highest of 20
  EXPECT_THROW(choose_threshold(probs, 2, std::vector<int64_t>(30, 0), 1, 0.9, "v"), Error);  // no example of the class
  EXPECT_EQ(parse_target_recall("spam=0.95"), (std::pair<std::string, double>{"spam", 0.95}));
  EXPECT_EQ(parse_target_recall("a=b=1").first, "a=b");
  for (const char* bad : {"spam", "spam=", "=0.9", "spam=0", "spam=1.5", "spam=x"}) EXPECT_THROW(parse_target_recall(bad), Error) << bad;
}

TEST(Metrics, EqualScikitLearn) {
  auto cases = nlohmann::json::parse(read_file(test::fixture("metrics_reference.json")));
  ASSERT_GE(cases.size(), 4u);
  for (const auto& c : cases) {
    auto yt = c["y_true"].get<std::vector<int64_t>>();
    auto yp = c["y_pred"].get<std::vector<int64_t>>();
    auto m = classification_metrics(yt, yp, c["n_classes"].get<int64_t>());
    EXPECT_NEAR(m.accuracy, c["accuracy"].get<double>(), 1e-12);
    EXPECT_EQ(m.confusion, c["confusion"].get<std::vector<std::vector<int64_t>>>());
    EXPECT_EQ(m.support, c["support"].get<std::vector<int64_t>>());
    for (size_t k = 0; k < m.precision.size(); ++k) {
      EXPECT_NEAR(m.precision[k], c["precision"][k].get<double>(), 1e-12);
      EXPECT_NEAR(m.recall[k], c["recall"][k].get<double>(), 1e-12);
      EXPECT_NEAR(m.f1[k], c["f1"][k].get<double>(), 1e-12);
    }
    EXPECT_NEAR(m.macro_precision, c["macro"]["precision"].get<double>(), 1e-12);
    EXPECT_NEAR(m.macro_recall, c["macro"]["recall"].get<double>(), 1e-12);
    EXPECT_NEAR(m.macro_f1, c["macro"]["f1"].get<double>(), 1e-12);
    EXPECT_NEAR(m.weighted_precision, c["weighted"]["precision"].get<double>(), 1e-12);
    EXPECT_NEAR(m.weighted_recall, c["weighted"]["recall"].get<double>(), 1e-12);
    EXPECT_NEAR(m.weighted_f1, c["weighted"]["f1"].get<double>(), 1e-12);
    EXPECT_NEAR(m.micro_f1, c["micro"]["f1"].get<double>(), 1e-12);
  }
}

TEST(Metrics, JsonReportCarriesEverything) {
  auto m = classification_metrics({0, 1, 1, 2}, {0, 1, 2, 2}, 3);
  auto j = metrics_json(m, {"a", "b", "c"});
  EXPECT_DOUBLE_EQ(j["accuracy"].get<double>(), 0.75);
  EXPECT_EQ(j["confusion_matrix"][1][2].get<int>(), 1);
  EXPECT_DOUBLE_EQ(j["per_class"]["c"]["precision"].get<double>(), 0.5);
  EXPECT_NE(metrics_text(m, {"a", "b", "c"}).find("macro avg"), std::string::npos);
}

// eval/scores against scikit-learn 1.2 (and a numpy ECE) on random, tied, never-predicted, absent-class and
// single-class cases (fixtures/make_metrics_reference.py), to 1e-9.
namespace {
void expect_close(double got, const nlohmann::json& want, const std::string& what) {
  if (want.is_null()) {
    EXPECT_TRUE(std::isnan(got)) << what << ": undefined, got " << got;
  } else {
    EXPECT_NEAR(got, want.get<double>(), 1e-9) << what;
  }
}
}  // namespace

TEST(Scores, EqualScikitLearn) {
  auto ref = nlohmann::json::parse(read_file(test::fixture("metrics_reference_scores.json")));
  ASSERT_GE(ref["cases"].size(), 7u);
  for (const auto& c : ref["cases"]) {
    const std::string kind = c["kind"].get<std::string>() + "/" + std::to_string(c["n_classes"].get<int>());
    auto y = c["y"].get<std::vector<int64_t>>();
    auto p = c["probs"].get<std::vector<double>>();
    const int64_t k = c["n_classes"];
    auto auc = roc_auc_ovr(y, p, k);
    auto ap = average_precision_ovr(y, p, k);
    for (int64_t j = 0; j < k; ++j) {
      expect_close(auc.per_class[j], c["roc_auc_per_class"][j], kind + " roc_auc class " + std::to_string(j));
      expect_close(ap.per_class[j], c["ap_per_class"][j], kind + " ap class " + std::to_string(j));
    }
    expect_close(log_loss(y, p, k), c["log_loss"], kind + " log_loss");
    std::vector<ReliabilityBin> bins;
    expect_close(expected_calibration_error(y, p, k, 15, &bins), c["ece"], kind + " ece");
    int64_t counted = 0;
    for (auto& b : bins) counted += b.count;
    EXPECT_EQ(counted, static_cast<int64_t>(y.size())) << kind;
    if (c.contains("roc_auc_macro")) {
      expect_close(auc.macro, c["roc_auc_macro"], kind + " roc_auc macro");
      expect_close(auc.weighted, c["roc_auc_weighted"], kind + " roc_auc weighted");
      expect_close(ap.macro, c["ap_macro"], kind + " mAP");
      expect_close(ap.weighted, c["ap_weighted"], kind + " ap weighted");
      for (auto& [t, v] : c["top_k"].items()) expect_close(top_k_accuracy(y, p, k, std::stoll(t)), v, kind + " top-" + t);
    }
    if (c.contains("roc_auc_binary")) {
      std::vector<int> yb(y.begin(), y.end());
      std::vector<double> s;
      for (size_t i = 0; i < y.size(); ++i) s.push_back(p[2 * i + 1]);
      expect_close(roc_auc_binary(yb, s), c["roc_auc_binary"], kind + " binary roc_auc");
      expect_close(average_precision_binary(yb, s), c["ap_binary"], kind + " binary ap");
    }
  }
  for (const auto& c : ref["cases"]) {
    const std::string kind = c["kind"].get<std::string>() + "/" + std::to_string(c["n_classes"].get<int>());
    auto y = c["y"].get<std::vector<int64_t>>();
    auto p = c["probs"].get<std::vector<double>>();
    const int64_t k = c["n_classes"];
    ASSERT_FALSE(c["curves"].empty()) << kind;
    for (const auto& want : c["curves"]) {
      const int64_t cls = want["class"];
      std::vector<int> yc;
      std::vector<double> sc;
      for (size_t i = 0; i < y.size(); ++i) {
        yc.push_back(y[i] == cls);
        sc.push_back(p[i * static_cast<size_t>(k) + static_cast<size_t>(cls)]);
      }
      const std::string what = kind + " class " + std::to_string(cls);
      auto expect_curve = [&](const std::vector<double>& got, const nlohmann::json& ref_values, const std::string& name) {
        ASSERT_EQ(got.size(), ref_values.size()) << what << " " << name;
        for (size_t i = 0; i < got.size(); ++i) expect_close(got[i], ref_values[i], what + " " + name + "[" + std::to_string(i) + "]");
      };
      Curve roc = roc_curve(yc, sc);
      expect_curve(roc.x, want["fpr"], "fpr");
      expect_curve(roc.y, want["tpr"], "tpr");
      expect_curve(roc.thresholds, want["roc_thresholds"], "roc thresholds");
      Curve pr = precision_recall_curve(yc, sc);
      expect_curve(pr.x, want["recall"], "recall");
      expect_curve(pr.y, want["precision"], "precision");
      expect_curve(pr.thresholds, want["pr_thresholds"], "pr thresholds");
    }
  }
  const auto& ml = ref["multilabel"];
  auto s = average_precision_multilabel(ml["Y"].get<std::vector<int>>(), ml["scores"].get<std::vector<double>>(), ml["n_classes"]);
  expect_close(s.macro, ml["ap_macro"], "multi-label mAP");
  expect_close(s.weighted, ml["ap_weighted"], "multi-label weighted AP");
  for (size_t j = 0; j < s.per_class.size(); ++j) expect_close(s.per_class[j], ml["ap_per_class"][j], "multi-label AP class");
}

TEST(Scores, BootstrapIntervalCoversTheEstimateAndNarrowsWithMoreData) {
  // accuracy of n coin flips with p = 0.8: the 95% interval is about +-1.96 sqrt(p (1 - p) / n)
  for (size_t n : {100u, 1600u}) {
    std::mt19937_64 rng(7);
    std::bernoulli_distribution hit(0.8);
    std::vector<int> correct(n);
    for (auto& c : correct) c = hit(rng);
    auto acc = [&](const std::vector<size_t>& idx) {
      double s = 0;
      for (size_t i : idx) s += correct[i];
      return s / static_cast<double>(idx.size());
    };
    std::vector<size_t> all(n);
    std::iota(all.begin(), all.end(), 0);
    const double est = acc(all);
    Interval iv = bootstrap_interval(n, acc, 2000, 0.95, 3);
    EXPECT_LT(iv.low, est);
    EXPECT_GT(iv.high, est);
    const double half = 1.96 * std::sqrt(est * (1 - est) / static_cast<double>(n));
    EXPECT_NEAR(iv.high - iv.low, 2 * half, 0.25 * 2 * half) << n;
    // the same seed gives the same interval
    Interval again = bootstrap_interval(n, acc, 2000, 0.95, 3);
    EXPECT_EQ(iv.low, again.low);
    EXPECT_EQ(iv.high, again.high);
  }
}

TEST(Scores, ReportHasEveryScoreAndNullForUndefined) {
  // three classes, the third never occurs: its ROC-AUC is undefined (null), the means skip it
  std::vector<int64_t> y = {0, 1, 0, 1, 0, 1};
  std::vector<double> p = {0.7, 0.2, 0.1, 0.3, 0.6, 0.1, 0.5, 0.4, 0.1, 0.4, 0.5, 0.1, 0.8, 0.1, 0.1, 0.2, 0.7, 0.1};
  auto j = score_report(y, p, 3, {"a", "b", "c"}, 200, 1);
  EXPECT_TRUE(j["roc_auc"]["per_class"]["c"].is_null());
  EXPECT_DOUBLE_EQ(j["roc_auc"]["per_class"]["a"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(j["roc_auc"]["macro"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(j["average_precision"]["per_class"]["c"].get<double>(), 0.0);  // scikit-learn's value without positives
  EXPECT_DOUBLE_EQ(j["top_k_accuracy"]["2"].get<double>(), 1.0);
  EXPECT_EQ(j["reliability"].size(), 15u);
  EXPECT_EQ(j["confidence_95"]["accuracy"].size(), 2u);
  EXPECT_GT(j["log_loss"].get<double>(), 0.0);
  // curves: the micro average and the two classes with positives ("c" has none), each from (0, 0) to (1, 1)
  const auto& roc = j["curves"]["roc"];
  ASSERT_EQ(roc.size(), 3u);
  EXPECT_EQ(roc[0]["label"], "micro average");
  EXPECT_EQ(roc[1]["label"], "a");
  EXPECT_EQ(roc[2]["label"], "b");
  EXPECT_DOUBLE_EQ(roc[1]["area"].get<double>(), 1.0);
  for (const auto& c : roc) {
    EXPECT_EQ(c["x"].front(), 0.0);
    EXPECT_EQ(c["y"].front(), 0.0);
    EXPECT_EQ(c["x"].back(), 1.0);
    EXPECT_EQ(c["y"].back(), 1.0);
  }
  EXPECT_EQ(j["curves"]["pr"].size(), 3u);
  EXPECT_EQ(j["curves"]["pr"][1]["x"].back(), 0.0);  // recall decreasing to 0, precision 1 there
  EXPECT_EQ(j["curves"]["pr"][1]["y"].back(), 1.0);
  // binary: one curve, the second class's; long curves are thinned to 200 points
  std::vector<int64_t> yb;
  std::vector<double> pb;
  for (int i = 0; i < 1000; ++i) {
    yb.push_back(i % 3 == 0);
    const double s = (i % 3 == 0 ? 0.3 : 0.0) + 0.7 * ((i * 7919) % 1000) / 1000.0;
    pb.push_back(1 - s);
    pb.push_back(s);
  }
  auto b = score_report(yb, pb, 2, {"no", "yes"}, 0);
  ASSERT_EQ(b["curves"]["pr"].size(), 1u);
  EXPECT_EQ(b["curves"]["pr"][0]["label"], "yes");
  EXPECT_LE(b["curves"]["pr"][0]["x"].size(), 200u);
  EXPECT_GT(b["curves"]["pr"][0]["x"].size(), 150u);
  EXPECT_DOUBLE_EQ(b["curves"]["roc"][0]["area"].get<double>(), b["roc_auc"].get<double>());
}
