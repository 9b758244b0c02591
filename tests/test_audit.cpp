// data/audit and `kotsu audit`: duplicates, conflicting labels, near duplicates, leakage, lengths and
// imbalance on a small planted dataset, and the mislabel ranking on planted out-of-fold probabilities.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <filesystem>
#include <random>
#include <set>

#include "kotsu/data/audit.hpp"
#include "kotsu/data/audit_images.hpp"
#include "kotsu/data/text_dataset.hpp"
#include "kotsu/io/file.hpp"
#include "test_util.hpp"

namespace kotsu {
namespace {

TEST(Audit, NormalFormFoldsCaseWidthAndSpacing) {
  EXPECT_EQ(audit_normal_form("  Where IS my\tcard?  "), "where is my card?");
  EXPECT_EQ(audit_normal_form("ＣＡＲＤ　１２３"), "card 123");  // full-width letters, digits and space
  EXPECT_EQ(audit_normal_form(""), "");
  EXPECT_EQ(audit_loose_form(audit_normal_form("Call me, NOW!! (please)")), "callmenowplease");
  EXPECT_EQ(audit_loose_form("«ok»…fine"), "okfine");
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

TEST(Audit, SmsSpamPlantedDuplicatesAreAllFoundAndNothingNewAppears) {
  const std::string src = test::shared_dir() + "/data/text/sms_spam/SMSSpamCollection";
  if (!std::filesystem::exists(src)) KOTSU_SKIP() << "../shared/data/text/sms_spam not found";
  const std::string dir = test::temp_dir("audit-sms");
  std::filesystem::copy_file(src, dir + "/sms.tsv");
  TextColumns cols;
  cols.text = "SMS";
  cols.label = "Label";
  TextDataset d = load_text_dataset(dir + "/sms.tsv", cols);
  std::vector<AuditRow> rows;
  for (size_t i = 0; i < d.size(); ++i) rows.push_back({d.texts[i], d.labels[i], "sms", d.lines[i]});
  AuditOptions o;
  o.max_listed = 100000;
  const auto clean = audit_texts(rows, {}, o);
  // the clean set's own duplicates (genuine: repeated messages and templated spam; listed in docs/results.md)
  const size_t clean_exact = clean["exact_duplicates"]["extra_rows"], clean_near = clean["near_duplicates"]["pairs"];
  EXPECT_EQ(clean["conflicting_labels"]["groups"], 0);
  // plant 100 edited copies of distinct long messages that have no duplicate yet
  std::set<size_t> in_groups;
  for (const auto& g : clean["exact_duplicates"]["examples"])
    for (const auto& r : g) in_groups.insert(r["row"].get<size_t>());
  for (const auto& p : clean["near_duplicates"]["examples"])
    for (const auto& r : p) in_groups.insert(r["row"].get<size_t>());
  std::mt19937_64 rng(1);
  std::vector<size_t> sources;
  while (sources.size() < 100) {
    const size_t i = rng() % d.size();
    if (d.texts[i].size() >= 80 && !in_groups.count(i) && std::find(sources.begin(), sources.end(), i) == sources.end()) sources.push_back(i);
  }
  const size_t n0 = rows.size();
  for (size_t k = 0; k < sources.size(); ++k) {
    std::string t = d.texts[sources[k]];
    switch (k % 5) {
      case 0: for (auto& c : t) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c))); break;  // case
      case 1: t = "  " + t;  // spacing
        for (size_t p = t.find(' ', 3); p != std::string::npos && p < t.size(); p = t.find(' ', p + 3)) t.insert(p, " ");
        break;
      case 2: t.erase(std::remove_if(t.begin(), t.end(), [](char c) { return c == '.' || c == ',' || c == '!' || c == '?'; }), t.end());
        if (t == d.texts[sources[k]]) t += "!";  // punctuation
        break;
      case 3: t += "!!"; break;
      case 4: t[t.size() / 2] = t[t.size() / 2] == 'x' ? 'y' : 'x'; break;  // a typo
    }
    rows.push_back({t, d.labels[sources[k]], "sms", 0});
  }
  const auto planted = audit_texts(rows, {}, o);
  std::set<std::pair<size_t, size_t>> found;
  for (const auto& g : planted["exact_duplicates"]["examples"])
    for (size_t a = 0; a < g.size(); ++a)
      for (size_t b = a + 1; b < g.size(); ++b) found.emplace(g[a]["row"].get<size_t>(), g[b]["row"].get<size_t>());
  size_t near_with_planted = 0;
  for (const auto& p : planted["near_duplicates"]["examples"]) {
    const size_t a = p[0]["row"], b = p[1]["row"];
    found.emplace(std::min(a, b), std::max(a, b));
    near_with_planted += a >= n0 || b >= n0;
  }
  for (size_t k = 0; k < sources.size(); ++k)
    EXPECT_TRUE(found.count({sources[k], n0 + k})) << "planted copy " << k << " (edit " << k % 5 << ") not found: " << rows[n0 + k].text;
  // nothing new between original rows: every extra pair involves a planted copy
  EXPECT_EQ(planted["exact_duplicates"]["extra_rows"].get<size_t>(), clean_exact + 40);  // case and spacing edits
  EXPECT_EQ(planted["near_duplicates"]["pairs"].get<size_t>(), clean_near + near_with_planted);
  EXPECT_EQ(near_with_planted, 60u);
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
  for (size_t i = 0; i < 300; ++i) {
    if (r.suspect[i]) {
      EXPECT_TRUE(flipped.count(i)) << i;
    }
  }
}

TEST(Audit, CliWritesTheReports) {
  const std::string dir = test::temp_dir("audit-cli");
  write_atomic(dir + "/d.csv", "text,label\nwhere is my card,card\nwhere is my card,loan\nhow to pay,loan\nok,card\n");
  int status;
  const std::string out = test::run_command(std::string(KOTSU_CLI) + " audit --data " + dir + "/d.csv --out " + dir + "/out", &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(out.find("conflicting labels: 1 groups"), std::string::npos) << out;
  auto j = nlohmann::json::parse(read_file(dir + "/out/audit.json"));
  EXPECT_EQ(j["too_short"]["count"], 1);
  const std::string html = read_file(dir + "/out/audit.html");
  EXPECT_NE(html.find("id=\"class-counts\""), std::string::npos);
  EXPECT_NE(html.find("id=\"conflicting-labels\""), std::string::npos);
}

TEST(AuditPictures, PerceptualHashIgnoresScaleAndSmallChangesButNotContent) {
  auto picture = [](int w, int h, int seed) {
    Image im;
    im.width = w, im.height = h;
    im.pixels.resize(static_cast<size_t>(w) * h * 3);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        for (int c = 0; c < 3; ++c) {  // smooth shapes: a few sinusoids
          const double u = static_cast<double>(x) / w, v = static_cast<double>(y) / h;
          const double val = 128 + 60 * std::sin(6.3 * (u * (1 + seed % 3) + v * (seed % 5))) + 50 * std::cos(9.1 * v * (1 + seed % 2) + c);
          im.pixels[(static_cast<size_t>(y) * w + x) * 3 + c] = static_cast<uint8_t>(std::clamp(val, 0.0, 255.0));
        }
    return im;
  };
  const Image a = picture(64, 48, 1), a_big = picture(256, 192, 1), b = picture(64, 48, 2);
  EXPECT_LE(std::popcount(perceptual_hash(a) ^ perceptual_hash(a_big)), 2);
  EXPECT_GE(std::popcount(perceptual_hash(a) ^ perceptual_hash(b)), 12);
  Image brighter = a;
  for (auto& p : brighter.pixels) p = static_cast<uint8_t>(std::min(255, p + 15));
  EXPECT_LE(std::popcount(perceptual_hash(a) ^ perceptual_hash(brighter)), 4);
  Image flat;
  flat.width = flat.height = 20;
  flat.pixels.assign(20 * 20 * 3, 77);
  EXPECT_TRUE(fingerprint(flat).blank);
  EXPECT_FALSE(fingerprint(a).blank);
  EXPECT_EQ(fingerprint(a).exact, fingerprint(Image(a)).exact);
  EXPECT_NE(fingerprint(a).exact, fingerprint(brighter).exact);
  // thumbnails: brightness does not matter, a one-pixel shift is absorbed, other content is far
  const auto ta = grey_thumbnail(a), tb = grey_thumbnail(b), tbright = grey_thumbnail(brighter);
  EXPECT_GT(thumbnail_similarity(ta, tbright, 0), 0.99);
  std::vector<uint8_t> shifted(ta.size());
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 32; ++x) shifted[static_cast<size_t>(y * 32 + x)] = ta[static_cast<size_t>(y * 32 + std::max(0, x - 1))];
  EXPECT_GT(thumbnail_similarity(ta, shifted, 1), 0.999);
  EXPECT_LT(thumbnail_similarity(ta, shifted, 0), thumbnail_similarity(ta, shifted, 1));
  EXPECT_LT(thumbnail_similarity(ta, tb, 1), 0.9);
}

TEST(AuditPictures, HashNeighboursEqualsBruteForce) {
  std::mt19937_64 rng(9);
  std::vector<uint64_t> h;
  for (int i = 0; i < 400; ++i) {
    uint64_t x = i % 4 == 0 || h.empty() ? rng() : h[rng() % h.size()];  // copies with a few bits flipped
    for (int f = static_cast<int>(rng() % 9); f > 0; --f) x ^= 1ULL << (rng() % 64);
    h.push_back(x);
  }
  std::vector<bool> valid(h.size(), true);
  valid[5] = false;
  for (int d : {0, 3, 6, 10}) {
    std::vector<std::pair<size_t, size_t>> brute;
    for (size_t i = 0; i < h.size(); ++i)
      for (size_t j = i + 1; j < h.size(); ++j)
        if (valid[i] && valid[j] && std::popcount(h[i] ^ h[j]) <= d) brute.emplace_back(i, j);
    EXPECT_EQ(hash_neighbours(h, valid, d), brute) << "distance " << d;
  }
}

TEST(AuditPictures, FindsEveryPlantedProblemAndNothingElse) {
  // fixtures/make_images.py: 36 distinct pictures plus planted copies, near copies and bad files
  const std::string root = test::fixture("audit_pictures");
  const auto want = nlohmann::json::parse(read_file(root + "/expected.json"));
  const std::string dir = test::temp_dir("audit-pictures");
  int status;
  const std::string out = test::run_command(std::string(KOTSU_CLI) + " audit --data " + root + "/train --test " + root + "/test --out " + dir, &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(out.find("unreadable " + root + "/train/nut/broken.jpg"), std::string::npos) << out;
  auto r = nlohmann::json::parse(read_file(dir + "/audit.json"));
  EXPECT_EQ(r["kind"], "pictures");
  EXPECT_EQ(r["rows"], 36 + 1 + 1 + 4 + 3);  // originals, exact copy, relabelled copy, 4 near copies, broken/blank/tiny
  auto rel = [&](const nlohmann::json& e) { return e["file"].get<std::string>().substr(root.size() + 1); };
  auto pair_of = [&](const nlohmann::json& a, const nlohmann::json& b) {
    std::vector<std::string> p = {rel(a), rel(b)};
    std::sort(p.begin(), p.end());
    return p;
  };
  auto sorted = [](std::vector<std::string> p) {
    std::sort(p.begin(), p.end());
    return p;
  };
  ASSERT_EQ(r["exact_duplicates"]["extra_rows"], 1);
  EXPECT_EQ(pair_of(r["exact_duplicates"]["examples"][0][0], r["exact_duplicates"]["examples"][0][1]), sorted(want["exact"][0]));
  ASSERT_EQ(r["conflicting_labels"]["groups"], 1);
  EXPECT_EQ(pair_of(r["conflicting_labels"]["examples"][0][0], r["conflicting_labels"]["examples"][0][1]), sorted(want["conflict"][0]));
  std::set<std::vector<std::string>> near, planted;
  for (const auto& e : r["near_duplicates"]["examples"]) near.insert(pair_of(e["a"], e["b"]));
  for (const auto& p : want["near"]) planted.insert(sorted(p));
  EXPECT_EQ(near, planted);  // all found, nothing else
  EXPECT_EQ(r["near_duplicates"]["with_different_labels"], 0);
  ASSERT_EQ(r["leakage"]["exact"], 1);
  EXPECT_EQ(pair_of(r["leakage"]["examples"][0][0], r["leakage"]["examples"][0][1]), sorted(want["leak_exact"][0]));
  ASSERT_EQ(r["leakage"]["near"], 1);
  EXPECT_EQ(pair_of(r["leakage"]["near_examples"][0]["a"], r["leakage"]["near_examples"][0]["b"]), sorted(want["leak_near"][0]));
  EXPECT_EQ(r["unreadable"]["count"], 1);
  EXPECT_EQ(rel(r["unreadable"]["examples"][0]), want["unreadable"][0]);
  EXPECT_EQ(r["blank"]["count"], 1);
  EXPECT_EQ(rel(r["blank"]["examples"][0]), want["blank"][0]);
  EXPECT_EQ(r["tiny"]["count"], 1);
  EXPECT_EQ(rel(r["tiny"]["examples"][0]), want["tiny"][0]);
  // the HTML page renders in a browser without errors, with the findings
  auto page = test::open_in_chromium(dir + "/audit.html", dir + "/audit.png", 1100, 2000);
  if (!page.available) KOTSU_SKIP() << "chromium is not installed (scripts/setup installs it)";
  EXPECT_EQ(page.console, "");
  for (const char* id : {"class-counts", "findings", "exact-duplicates", "conflicting-labels", "near-duplicates", "leakage", "near-leakage",
                         "finding-unreadable", "finding-blank", "finding-tiny"})
    EXPECT_NE(page.dom.find(std::string("id=\"") + id + "\""), std::string::npos) << id;
  EXPECT_TRUE(file_exists(dir + "/audit.png"));
}

TEST(AuditPictures, RanksAPlantedMislabelWithAPictureModel) {
  // fixtures/make_images.py: 3 colours x 12 pictures, and a red picture filed under green; the features of
  // a random ResNet-18 (fixtures/make_resnet.py) keep the colours apart
  const std::string dir = test::temp_dir("audit-pictures-model");
  int status;
  const std::string out = test::run_command(std::string(KOTSU_CLI) + " audit --data " + test::fixture("audit_mislabel") + " --model " +
                                                test::fixture("resnet18_hf") + " --folds 3 --out " + dir + "/out --threads 2",
                                            &status);
  ASSERT_EQ(status, 0) << out;
  auto r = nlohmann::json::parse(read_file(dir + "/out/audit.json"));
  ASSERT_TRUE(r.contains("likely_mislabels")) << out;
  EXPECT_EQ(r["mislabel_order"].size(), 37u);
  const auto& top = r["likely_mislabels"]["ranking"][0];
  EXPECT_NE(top["file"].get<std::string>().find("green/planted.png"), std::string::npos) << r["likely_mislabels"].dump(1);
  EXPECT_EQ(top["label"], "green");
  EXPECT_EQ(top["suggested"], "red");
  EXPECT_NE(out.find("green/planted.png"), std::string::npos) << out;
}

}  // namespace
}  // namespace kotsu
