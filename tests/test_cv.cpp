// train/cross_validate and `kotsu cv`: stratified and grouped folds, a fine-tune per fold, mean/std and
// out-of-fold predictions, and a killed cv that resumes to the same result as an uninterrupted one.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>

#include "kotsu/core/error.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/train/cross_validate.hpp"
#include "test_util.hpp"

namespace kotsu {
namespace {

TEST(Cv, StratifiedFoldsKeepClassSharesAndSizes) {
  std::vector<int64_t> y;
  for (int c = 0; c < 3; ++c)
    for (int k = 0; k < (c == 0 ? 50 : c == 1 ? 23 : 8); ++k) y.push_back(c);
  auto fold = stratified_folds(y, 5, 7);
  std::map<int64_t, std::map<int64_t, int>> per;  // fold -> class -> count
  std::map<int64_t, int> size;
  for (size_t i = 0; i < y.size(); ++i) {
    ++per[fold[i]][y[i]];
    ++size[fold[i]];
  }
  ASSERT_EQ(size.size(), 5u);
  for (auto& [f, n] : size) EXPECT_NEAR(n, 81 / 5.0, 1.0) << f;
  for (auto& [f, counts] : per) {
    EXPECT_NEAR(counts[0], 10, 1) << f;
    EXPECT_NEAR(counts[1], 23 / 5.0, 1) << f;
    EXPECT_NEAR(counts[2], 8 / 5.0, 1) << f;
  }
  EXPECT_EQ(stratified_folds(y, 5, 7), fold);
  EXPECT_NE(stratified_folds(y, 5, 8), fold);
}

TEST(Cv, GroupFoldsNeverSplitAGroup) {
  std::vector<std::string> g;
  for (int i = 0; i < 100; ++i) g.push_back("customer" + std::to_string(i % 13 + (i % 3 == 0 ? 0 : i % 5)));
  auto fold = group_folds(g, 4);
  std::map<std::string, std::set<int64_t>> where;
  for (size_t i = 0; i < g.size(); ++i) where[g[i]].insert(fold[i]);
  for (auto& [name, folds] : where) EXPECT_EQ(folds.size(), 1u) << name;
  EXPECT_EQ(std::set<int64_t>(fold.begin(), fold.end()).size(), 4u);
  EXPECT_THROW(group_folds({"a", "a", "b"}, 3), Error);
}

TrainOptions cv_options(const std::string& out) {
  TrainOptions o;
  o.model = test::fixture("tiny_bert_init");
  o.data = test::fixture("task/train.csv");
  o.out = out;
  o.lr = 1e-3;
  o.batch_size = 8;
  o.epochs = 10;
  o.strategy = "full";  // the trainer's mechanics on the full strategy (auto would choose contrastive here)
  o.patience = 0;
  o.seed = 3;
  o.threads = 1;
  return o;
}

TEST(Cv, KilledCvResumesToTheUninterruptedResult) {
  const std::string dir = test::temp_dir("cv");
  TrainHooks quiet;
  quiet.quiet = true;
  CvOptions cv;
  cv.folds = 3;
  nlohmann::json full = cross_validate(cv_options(dir + "/a"), cv, quiet);
  ASSERT_EQ(full["status"], "finished");
  EXPECT_EQ(full["per_fold"].size(), 3u);
  double sum = 0;
  for (auto& f : full["per_fold"]) sum += f["accuracy"].get<double>();
  EXPECT_NEAR(full["mean"]["accuracy"].get<double>(), sum / 3, 1e-12);
  EXPECT_GE(full["std"]["accuracy"].get<double>(), 0.0);
  EXPECT_GT(full["out_of_fold"]["accuracy"].get<double>(), 0.5);  // chance: 1/3
  EXPECT_TRUE(full["mean"].contains("roc_auc"));
  const std::string oof = read_file(dir + "/a/oof.jsonl");
  EXPECT_EQ(std::count(oof.begin(), oof.end(), '\n'), 300);
  auto first = nlohmann::json::parse(oof.substr(0, oof.find('\n')));
  EXPECT_EQ(first["row"], 0);
  EXPECT_EQ(first["line"], 2);
  EXPECT_TRUE(first["probabilities"].contains("card"));
  // the same cv stopped after the first epoch of fold 1, then run again
  TrainHooks stop = quiet;
  stop.stop_after_epoch = 1;
  EXPECT_EQ(cross_validate(cv_options(dir + "/b"), cv, stop)["status"], "stopped");
  nlohmann::json resumed = cross_validate(cv_options(dir + "/b"), cv, quiet);
  ASSERT_EQ(resumed["status"], "finished");
  EXPECT_EQ(read_file(dir + "/b/oof.jsonl"), oof);
  EXPECT_EQ(resumed["mean"], full["mean"]);
  // a cv directory is not reused for other data, nor written over
  TrainOptions other = cv_options(dir + "/b");
  other.data = test::fixture("task/test.tsv");
  EXPECT_THROW(cross_validate(other, cv, quiet), Error);
  TrainOptions rows = cv_options(dir + "/c");
  rows.rows = {1, 2, 3};
  EXPECT_THROW(cross_validate(rows, cv, quiet), Error);
}

TEST(Cv, CliGroupedFoldsAndSummary) {
  const std::string dir = test::temp_dir("cv-cli");
  // the task with a group column: 20 groups of 15 rows
  const std::string rows = read_file(test::fixture("task/train.csv"));
  std::string out = "\"text\",\"label\",\"group\"\n";
  size_t i = 0;
  for (size_t pos = rows.find('\n') + 1; pos < rows.size(); ++i) {
    const size_t nl = rows.find('\n', pos);
    std::string line = rows.substr(pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    out += line + ",\"g" + std::to_string(i % 20) + "\"\n";
    pos = nl + 1;
  }
  write_atomic(dir + "/data.csv", out);
  int status;
  const std::string text = test::run_command(std::string(KOTSU_CLI) + " cv --model " + test::fixture("tiny_bert_init") + " --data " + dir +
                          "/data.csv --out " + dir + "/cv --folds 4 --group-col group --strategy head --threads 1 --quiet", &status);
  ASSERT_EQ(status, 0) << text;
  EXPECT_NE(text.find("4-fold cross-validation"), std::string::npos) << text;
  EXPECT_NE(text.find("grouped by group"), std::string::npos) << text;
  EXPECT_NE(text.find("macro_f1"), std::string::npos) << text;
  auto plan = nlohmann::json::parse(read_file(dir + "/cv/cv-plan.json"));
  auto fold = plan["fold"].get<std::vector<int64_t>>();
  std::map<size_t, std::set<int64_t>> where;
  for (size_t r = 0; r < fold.size(); ++r) where[r % 20].insert(fold[r]);
  for (auto& [g, fs] : where) EXPECT_EQ(fs.size(), 1u) << "group g" << g;
}

}  // namespace
}  // namespace kotsu
