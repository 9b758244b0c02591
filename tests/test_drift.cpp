// Tests of kotsu/eval/drift: PSI values checked against the formula worked by hand (values in comments from
// Python's math.log), decile binning at the reference's quantiles, the floor for empty bins, verdicts.
#include <gtest/gtest.h>

#include "kotsu/core/error.hpp"
#include "kotsu/eval/drift.hpp"

using namespace kotsu;

TEST(Drift, CategoricalPsiAndVerdicts) {
  std::vector<std::string> ref(50, "a"), live(80, "a");
  ref.insert(ref.end(), 50, "b");
  live.insert(live.end(), 20, "b");
  const auto r = psi_categorical(ref, live, "label");
  // 0.3 ln(0.8/0.5) + (-0.3) ln(0.2/0.5)
  EXPECT_NEAR(r.psi, 0.41588830833596724, 1e-12);
  EXPECT_EQ(r.bins, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.reference, (std::vector<double>{0.5, 0.5}));
  EXPECT_EQ(r.live, (std::vector<double>{0.8, 0.2}));
  EXPECT_EQ(r.verdict(), "major shift");
  EXPECT_EQ(psi_categorical(ref, ref, "label").psi, 0.0);
  EXPECT_EQ(psi_categorical(ref, ref, "label").verdict(), "stable");
  // a category the reference never had: its share is floored at 1e-4
  std::vector<std::string> only_a(100, "a"), with_c(90, "a");
  with_c.insert(with_c.end(), 10, "c");
  EXPECT_NEAR(psi_categorical(only_a, with_c, "label").psi, 0.7006208039360982, 1e-12);
  EXPECT_THROW(psi_categorical({}, with_c, "label"), Error);
  EXPECT_THROW(psi_categorical(only_a, {}, "label"), Error);
}

TEST(Drift, NumericPsiBinsAtTheReferenceDeciles) {
  std::vector<double> ref;
  for (int i = 1; i <= 100; ++i) ref.push_back(i);
  const auto same = psi_numeric(ref, ref, "confidence");
  ASSERT_EQ(same.bins.size(), 10u);
  EXPECT_EQ(same.bins.front(), "<= 10");
  EXPECT_EQ(same.bins[1], "(10, 20]");
  EXPECT_EQ(same.bins.back(), "> 90");
  for (double s : same.reference) EXPECT_DOUBLE_EQ(s, 0.1);
  EXPECT_DOUBLE_EQ(same.psi, 0.0);
  // everything in the top decile: 9 empty bins floored at 1e-4
  std::vector<double> top;
  for (int i = 0; i < 50; ++i) top.push_back(91 + i % 10);
  EXPECT_NEAR(psi_numeric(ref, top, "confidence").psi, 8.283089355027482, 1e-9);
  // a mild shift: shares 0.05, 0.05, 0.1 x 6, 0.15, 0.15 -> 2 (-0.05 ln 0.5) + 2 (0.05 ln 1.5), a moderate shift
  std::vector<double> mild;
  const int counts[10] = {10, 10, 20, 20, 20, 20, 20, 20, 30, 30};
  for (int b = 0; b < 10; ++b) mild.insert(mild.end(), static_cast<size_t>(counts[b]), 10.0 * b + 5);
  const auto m = psi_numeric(ref, mild, "confidence");
  EXPECT_NEAR(m.psi, 0.10986122886681095, 1e-12);
  EXPECT_EQ(m.live, (std::vector<double>{0.05, 0.05, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.15, 0.15}));
  EXPECT_EQ(m.verdict(), "moderate shift");
  // ties collapse bins; a constant reference is one bin and PSI 0 against itself
  const auto flat = psi_numeric({5, 5, 5, 5}, {5, 5}, "input_length");
  EXPECT_EQ(flat.bins, (std::vector<std::string>{"all"}));
  EXPECT_EQ(flat.psi, 0.0);
  // values beyond the reference's range have their own bins: a constant reference still sees the shift
  const auto beyond = psi_numeric({5, 5, 5, 5}, {5, 20, 20, 1}, "input_length");
  EXPECT_EQ(beyond.bins, (std::vector<std::string>{"< 5 (below the reference)", "all", "> 5 (above the reference)"}));
  EXPECT_EQ(beyond.live, (std::vector<double>{0.25, 0.25, 0.5}));
  EXPECT_GT(beyond.psi, 0.25);
  EXPECT_THROW(psi_numeric(ref, {}, "confidence"), Error);
}

TEST(Drift, ReportTakesTheWorstFeatureAndRecommends) {
  DriftSample ref, same, shifted;
  for (int i = 0; i < 100; ++i) {
    ref.labels.push_back(i % 2 ? "a" : "b");
    ref.confidence.push_back(0.5 + i / 200.0);
    ref.length.push_back(10 + i);
  }
  same = ref;
  const auto stable = drift_report(ref, same);
  EXPECT_EQ(stable.verdict(), "stable");
  EXPECT_FALSE(stable.retrain());
  EXPECT_NE(stable.text().find("no action needed"), std::string::npos);
  shifted = ref;
  for (auto& l : shifted.length) l += 1000;  // only the lengths move
  const auto r = drift_report(ref, shifted);
  EXPECT_EQ(r.label.psi, 0.0);
  EXPECT_EQ(r.confidence.psi, 0.0);
  EXPECT_EQ(r.length.verdict(), "major shift");
  EXPECT_EQ(r.verdict(), "major shift");
  EXPECT_TRUE(r.retrain());
  EXPECT_NE(r.text().find("retrain recommended"), std::string::npos);
  EXPECT_EQ(r.to_json()["input_length"]["bins"].size(), 11u);  // the deciles and one above the reference's range
  EXPECT_EQ(r.length.bins.back(), "> 109 (above the reference)");
  EXPECT_DOUBLE_EQ(r.length.live.back(), 1.0);
  EXPECT_EQ(r.to_json()["retrain_recommended"], true);
  shifted.length.pop_back();
  EXPECT_THROW(drift_report(ref, shifted), Error);
}
