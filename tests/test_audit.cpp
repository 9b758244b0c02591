// data/audit and `kotsu audit`: duplicates, conflicting labels, near duplicates, leakage, lengths and
// imbalance on a small planted dataset, and the mislabel ranking on planted out-of-fold probabilities.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "kotsu/data/audit.hpp"
#include "kotsu/io/file.hpp"
#include "test_util.hpp"

namespace kotsu {
namespace {

TEST(Audit, NormalFormFoldsCaseWidthAndSpacing) {
  EXPECT_EQ(audit_normal_form("  Where IS my\tcard?  "), "where is my card?");
  EXPECT_EQ(audit_normal_form("ＣＡＲＤ　１２３"), "card 123");  // full-width letters, digits and space
  EXPECT_EQ(audit_normal_form(""), "");
}

TEST(Audit, FindsPlantedProblems) {
  std::vector<AuditRow> rows;
  auto add = [&](const std::string& t, const std::string& l, const std::string& src = "train.csv") {
    rows.push_back({t, l, src, rows.size() + 2});
  };
  add("where is my new card", "card");
  add("Where is my new   CARD", "card");                                     // duplicate of row 0
  add("how do I top up by bank transfer", "top_up");
  add("How do I top up by bank transfer", "transfer");                       // same text, other label
  add("my card payment was declined at the shop yesterday evening", "declined");
  add("my card payment was declined at the shop yesterday evenin", "declined");  // near duplicate
  add("", "card");                                                           // empty
  add("ok", "card");                                                         // too short
  for (const char* t : {"what are the fees for a transfer abroad", "is there a charge for topping up", "why was i charged twice",
                        "do you take a commission on exchange", "how much is a new plastic card", "monthly account cost?"})
    add(t, "fees");
  add("where is my new card", "card", "test.csv");                           // leaked into the test file
  add("my card payment was declined at the shop yesterday evening!", "declined", "test.csv");  // near leak
  add("something only in the test file", "fees", "test.csv");
  std::vector<int64_t> tokens(rows.size(), 5);
  tokens[4] = 300;  // too long
  AuditOptions o;
  o.max_tokens = 128;
  auto r = audit_texts(rows, tokens, o);
  EXPECT_EQ(r["rows"], 14);
  EXPECT_EQ(r["classes"]["fees"], 6);
  EXPECT_DOUBLE_EQ(r["imbalance_ratio"].get<double>(), 6.0);  // fees 6 / top_up 1
  EXPECT_EQ(r["exact_duplicates"]["extra_rows"], 1);
  EXPECT_EQ(r["exact_duplicates"]["examples"][0][1]["row"], 1);
  EXPECT_EQ(r["conflicting_labels"]["groups"], 1);
  EXPECT_EQ(r["near_duplicates"]["pairs"], 1);
  EXPECT_EQ(r["near_duplicates"]["examples"][0][0]["row"], 4);
  EXPECT_EQ(r["empty"]["count"], 1);
  EXPECT_EQ(r["too_short"]["count"], 1);
  EXPECT_EQ(r["too_long"]["count"], 1);
  EXPECT_EQ(r["leakage"]["exact"], 1);
  EXPECT_EQ(r["leakage"]["near"], 2);  // the near leak resembles both rows of the near-duplicate pair
}

TEST(Audit, NearDuplicatesNeedHighSimilarity) {
  std::vector<std::string> t = {"the quick brown fox jumps over the lazy dog", "the quick brown fox jumps over the lazy cat",
                                "completely different sentence about banking", "the quick brown fox"};
  auto pairs = near_duplicate_pairs(t, 0.8);
  ASSERT_EQ(pairs.size(), 1u);
  EXPECT_EQ(pairs[0], std::make_pair(size_t(0), size_t(1)));
  EXPECT_TRUE(near_duplicate_pairs(t, 0.99).empty());
}

TEST(Audit, RanksPlantedMislabelsFirst) {
  // 300 rows of 3 classes; the model is right with p ~ 0.8 except on 15 rows whose given label was flipped
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> u(0.6, 0.95);
  const int64_t k = 3;
  std::vector<int64_t> y;
  std::vector<double> probs;
  std::set<size_t> flipped;
  for (size_t i = 0; i < 300; ++i) {
    const int64_t truth = static_cast<int64_t>(i % 3);
    const double p = u(rng);
    for (int64_t c = 0; c < k; ++c) probs.push_back(c == truth ? p : (1 - p) / 2);
    int64_t given = truth;
    if (i % 20 == 7) {
      given = (truth + 1) % 3;
      flipped.insert(i);
    }
    y.push_back(given);
  }
  MislabelRanking r = rank_mislabels(y, probs, k);
  ASSERT_EQ(r.order.size(), 300u);
  for (size_t i = 0; i < flipped.size(); ++i) EXPECT_TRUE(flipped.count(r.order[i])) << "rank " << i;
  // the confident joint counts only the confidently wrong ones (their true class above its threshold)
  EXPECT_GE(r.suspects, flipped.size() / 3);
  EXPECT_LE(r.suspects, flipped.size());
  for (size_t i = 0; i < 300; ++i)
    if (r.suspect[i]) EXPECT_TRUE(flipped.count(i)) << i;
}

TEST(Audit, CliWritesTheReportAndRefusesPictures) {
  const std::string dir = test::temp_dir("audit-cli");
  write_atomic(dir + "/d.csv", "text,label\nwhere is my card,card\nwhere is my card,loan\nhow to pay,loan\nok,card\n");
  int status;
  const std::string out = test::run_command(std::string(KOTSU_CLI) + " audit --data " + dir + "/d.csv --out " + dir + "/out", &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(out.find("conflicting labels: 1 groups"), std::string::npos) << out;
  auto j = nlohmann::json::parse(read_file(dir + "/out/audit.json"));
  EXPECT_EQ(j["too_short"]["count"], 1);
}

}  // namespace
}  // namespace kotsu
