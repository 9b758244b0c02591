// --strategy auto (train/auto_strategy), the strategy-dependent defaults (epochs 0, val_fraction 0) and the
// contrastive strategy without a held-out split (TrainOptions::holds_out, the trainer's out-of-fold branch).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "kotsu/io/file.hpp"
#include "kotsu/train/auto_strategy.hpp"
#include "kotsu/train/trainer.hpp"
#include "test_models.hpp"
#include "test_util.hpp"

using namespace kotsu;

namespace {

// A CSV with `per_class[c]` rows of class "c<c>" (the texts are distinct words of the class's own).
std::string write_counts(const std::string& dir, const std::vector<int>& per_class) {
  const std::string path = dir + "/data.csv";
  std::ofstream f(path);
  f << "text,label\n";
  const char* words[] = {"card stolen", "loan rate", "transfer money", "account closed"};
  for (size_t c = 0; c < per_class.size(); ++c)
    for (int i = 0; i < per_class[c]; ++i) f << words[c % 4] << " number " << i << ",c" << c << "\n";
  return path;
}

TrainOptions text_options(const std::string& data) {
  TrainOptions o;
  o.model = test::fixture("tiny_bert");
  o.data = data;
  o.out = "unused";
  return o;
}

}  // namespace

// auto reads how many examples the data has: up to 600 (the rows a fold trains on, not the whole file) is
// few-shot and contrastive, more is full.
TEST(AutoStrategy, FewShotTextIsContrastiveAndLargerDataIsFull) {
  const std::string dir = test::temp_dir("auto-strategy");
  TrainOptions o = text_options(write_counts(dir, {8, 9, 200}));
  StrategyChoice c = choose_strategy(o, false, false);
  EXPECT_EQ(c.strategy, "contrastive");
  EXPECT_NE(c.why.find("few-shot: 217 examples of 3 classes (<= 600)"), std::string::npos) << c.why;
  // fewer than 8 per class (the median, not the mean: one large class does not make pairs for the others)
  o = text_options(write_counts(dir, {5, 7, 200}));
  c = choose_strategy(o, false, false);
  EXPECT_EQ(c.strategy, "head");
  EXPECT_NE(c.why.find("few-shot with 7 examples per class (median of 3, < 8)"), std::string::npos) << c.why;
  o = text_options(write_counts(dir, {5, 6, 7, 9}));
  EXPECT_EQ(choose_strategy(o, false, false).why.find("few-shot with 6.5 examples per class (median of 4, < 8)"), 0u);
  o = text_options(write_counts(dir, {300, 300}));
  EXPECT_EQ(choose_strategy(o, false, false).strategy, "contrastive");  // the bound is inclusive
  o = text_options(write_counts(dir, {300, 301}));
  c = choose_strategy(o, false, false);
  EXPECT_EQ(c.strategy, "full");
  EXPECT_NE(c.why.find("601 examples of 2 classes (> 600)"), std::string::npos) << c.why;
  o = text_options(write_counts(dir, {300, 301}));
  for (int64_t i = 0; i < 30; ++i) o.rows.push_back(i);
  c = choose_strategy(o, false, false);
  EXPECT_EQ(c.strategy, "contrastive") << c.why;
  EXPECT_NE(c.why.find("30 examples of 1 classes"), std::string::npos) << c.why;  // the first 30 rows are all c0
}

// Where contrastive does not apply, auto is full, and says why.
TEST(AutoStrategy, PicturesLmsScratchAndWorkersAreFull) {
  const std::string dir = test::temp_dir("auto-strategy-other");
  TrainOptions o = text_options(write_counts(dir, {5, 5}));
  StrategyChoice c = choose_strategy(o, true, false);
  EXPECT_EQ(c.strategy, "full");
  EXPECT_NE(c.why.find("causal LM"), std::string::npos) << c.why;
  c = choose_strategy(o, false, true);
  EXPECT_EQ(c.strategy, "full");
  EXPECT_NE(c.why.find("data-parallel"), std::string::npos) << c.why;
  o.init = "random";
  c = choose_strategy(o, false, false);
  EXPECT_EQ(c.strategy, "full");
  EXPECT_NE(c.why.find("--init random"), std::string::npos) << c.why;
  o = text_options(test::fixture("image_task/folder"));
  o.model = test::tiny_mobilenet("auto-strategy-pictures");
  c = choose_strategy(o, false, false);
  EXPECT_EQ(c.strategy, "full");
  EXPECT_NE(c.why.find("pictures"), std::string::npos) << c.why;
}

// resolve_defaults fills the strategy and the strategy's epochs, keeps what was named, and says why only
// when it chose.
TEST(AutoStrategy, ResolveFillsTheStrategyAndItsEpochs) {
  const std::string dir = test::temp_dir("auto-strategy-resolve");
  TrainOptions o = text_options(write_counts(dir, {8, 8, 8}));
  EXPECT_EQ(o.strategy, "auto");
  EXPECT_EQ(o.epochs, 0);
  ResolvedDefaults why = resolve_defaults(o, false, false);
  EXPECT_EQ(o.strategy, "contrastive");
  EXPECT_EQ(o.epochs, 20);  // 24 examples: 2 steps an epoch, so the most (contrastive_epochs)
  EXPECT_FALSE(why.strategy_why.empty());
  EXPECT_EQ(o.balance, "none");  // balanced classes
  EXPECT_EQ(why.balance_why, "");
  o = text_options(o.data);
  o.strategy = "full";
  EXPECT_EQ(resolve_defaults(o, false, false).strategy_why, "");
  EXPECT_EQ(o.epochs, 10);
  o = text_options(o.data);
  o.epochs = 3;
  resolve_defaults(o, false, false);
  EXPECT_EQ(o.epochs, 3);
}

// --balance auto: class-weights when the largest class has at least 4 times the smallest's examples (text
// classifiers), none otherwise, for pictures and causal LMs, and whatever was named stays.
TEST(AutoStrategy, BalanceAutoWeightsImbalancedTextClasses) {
  const std::string dir = test::temp_dir("auto-balance");
  TrainOptions o = text_options(write_counts(dir, {40, 10, 25}));  // 4:1 exactly
  ResolvedDefaults why = resolve_defaults(o, false, false);
  EXPECT_EQ(o.balance, "class-weights");
  EXPECT_NE(why.balance_why.find("'c0' has 40 examples, 'c1' 10 (at least 4:1)"), std::string::npos) << why.balance_why;
  o = text_options(write_counts(dir, {39, 10, 25}));
  EXPECT_EQ(resolve_defaults(o, false, false).balance_why, "");
  EXPECT_EQ(o.balance, "none");
  o = text_options(write_counts(dir, {40, 10}));
  o.balance = "oversample";
  resolve_defaults(o, false, false);
  EXPECT_EQ(o.balance, "oversample");
  o.balance = "auto";
  resolve_defaults(o, true, false);  // a causal LM
  EXPECT_EQ(o.balance, "none");
  o = text_options(test::fixture("image_task/folder"));
  o.model = test::tiny_mobilenet("auto-balance-pictures");
  resolve_defaults(o, false, false);
  EXPECT_EQ(o.balance, "none");
}

// Which runs hold a validation split out of `data`.
TEST(AutoStrategy, WhoHoldsOut) {
  TrainOptions o;
  for (const char* s : {"full", "partial", "lora"}) {
    o.strategy = s;
    EXPECT_TRUE(o.holds_out()) << s;
  }
  o.strategy = "head";
  EXPECT_FALSE(o.holds_out());
  o.strategy = "contrastive";
  EXPECT_FALSE(o.holds_out());
  o.target_recall = "loan=0.9";  // the threshold needs examples the encoder did not see
  EXPECT_TRUE(o.holds_out());
  o.target_recall.clear();
  o.val_fraction = 0.2;  // asked for: any strategy holds out
  EXPECT_TRUE(o.holds_out());
  EXPECT_DOUBLE_EQ(o.holdout_fraction(), 0.2);
  o.strategy = "head";
  EXPECT_TRUE(o.holds_out());
  o.val_data = "val.csv";
  EXPECT_FALSE(o.holds_out());
  o.val_data.clear();
  o.validation = false;
  EXPECT_FALSE(o.holds_out());
  EXPECT_DOUBLE_EQ(TrainOptions{}.holdout_fraction(), 0.1);
}

// Contrastive's default epochs give at least 64 optimizer steps, 5 to 20 epochs.
TEST(AutoStrategy, ContrastiveEpochsGiveEnoughSteps) {
  EXPECT_EQ(contrastive_epochs(100, 16), 10);  // 7 steps an epoch
  EXPECT_EQ(contrastive_epochs(150, 16), 7);   // 10
  EXPECT_EQ(contrastive_epochs(200, 16), 5);   // 13
  EXPECT_EQ(contrastive_epochs(600, 16), 5);   // the floor: about 40 pairs per example
  EXPECT_EQ(contrastive_epochs(30, 16), 20);   // the ceiling
  EXPECT_EQ(contrastive_epochs(100, 32), 16);  // a larger batch (or --grad-accum) makes fewer steps
  EXPECT_EQ(contrastive_epochs(0, 0), 20);     // nothing to divide by: the ceiling, no crash
  TrainOptions o;
  o.strategy = "contrastive";
  EXPECT_EQ(o.effective_epochs(), 5);  // without the data (resolve_defaults has it)
}

// `kotsu train` without --strategy on a few-shot file: auto picks contrastive, says why in the log and in
// run.json, trains every example with nothing held out for contrastive's epochs (30 examples are 2 steps an
// epoch: the 20 at most), and validates once, out of fold, after the last epoch (marked optimistic).
TEST(AutoStrategy, CliRunSaysWhatItPickedAndTrainsEveryExample) {
  const std::string dir = test::temp_dir("auto-strategy-cli");
  const std::string data = write_counts(dir, {10, 10, 10});
  int st = 0;
  const std::string out = test::run_command(std::string(KOTSU_CLI) + " train --model " + test::fixture("tiny_bert") + " --data " + data +
                                                " --out " + dir + "/run --lr 5e-3 --seed 3 --threads 1",
                                            &st);
  ASSERT_EQ(st, 0) << out;
  EXPECT_NE(out.find("strategy auto: contrastive, few-shot: 30 examples of 3 classes (<= 600)"), std::string::npos) << out;
  EXPECT_NE(out.find("all 30 examples train for 20 epochs (nothing held out)"), std::string::npos) << out;
  const auto run = nlohmann::json::parse(read_file(dir + "/run/run.json"));
  EXPECT_EQ(run["options"]["strategy"], "contrastive");
  EXPECT_EQ(run["options"]["epochs"], 20);
  EXPECT_NE(run["strategy_chosen"].get<std::string>().find("few-shot"), std::string::npos);
  EXPECT_EQ(run["n_train"], 30);
  EXPECT_EQ(run["n_val"], 0);
  EXPECT_NE(run["validation"].get<std::string>().find("optimistic"), std::string::npos) << run["validation"];
  const auto& h = run["history"];
  ASSERT_EQ(h.size(), 20u);
  for (size_t e = 0; e + 1 < h.size(); ++e) EXPECT_FALSE(h[e].contains("val_accuracy")) << e;
  EXPECT_TRUE(h[19].contains("val_accuracy"));
  EXPECT_EQ(run["best_metric"]["epoch"], 20);
  EXPECT_EQ(run["best_metric"]["value"], h[19]["val_accuracy"]);
  EXPECT_EQ(run["val_recall_per_class"].size(), 3u);
  EXPECT_EQ(run["options"]["balance"], "none");
  EXPECT_FALSE(run.contains("balance_chosen"));
}

// Imbalanced classes are said at the start, with the default that protects the small one, and recorded.
TEST(AutoStrategy, CliRunSaysTheClassesAreImbalancedAndWeighsThem) {
  const std::string dir = test::temp_dir("auto-balance-cli");
  const std::string data = write_counts(dir, {40, 8});
  int st = 0;
  const std::string out = test::run_command(std::string(KOTSU_CLI) + " train --model " + test::fixture("tiny_bert") + " --data " + data +
                                                " --out " + dir + "/run --strategy head --seed 3 --threads 1",
                                            &st);
  ASSERT_EQ(st, 0) << out;
  EXPECT_NE(out.find("imbalanced classes: 'c0' has 40 training examples, 'c1' 8 (5.0:1); rebalanced by default (--balance auto: class-weights)"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("validation recall per class: "), std::string::npos) << out;
  const auto run = nlohmann::json::parse(read_file(dir + "/run/run.json"));
  EXPECT_EQ(run["options"]["balance"], "class-weights");
  EXPECT_NE(run["balance_chosen"].get<std::string>().find("at least 4:1"), std::string::npos) << run.dump();
}

// Asked for (--val-fraction), contrastive holds a split out and validates after every epoch as before.
TEST(AutoStrategy, ContrastiveWithAValFractionValidatesEachEpoch) {
  const std::string dir = test::temp_dir("auto-strategy-holdout");
  const std::string data = write_counts(dir, {10, 10, 10});
  int st = 0;
  const std::string out = test::run_command(std::string(KOTSU_CLI) + " train --model " + test::fixture("tiny_bert") + " --data " + data +
                                                " --out " + dir + "/run --strategy contrastive --val-fraction 0.2 --lr 5e-3 --seed 3 --threads 1",
                                            &st);
  ASSERT_EQ(st, 0) << out;
  const auto run = nlohmann::json::parse(read_file(dir + "/run/run.json"));
  EXPECT_FALSE(run.contains("strategy_chosen"));  // named, not chosen
  EXPECT_FALSE(run.contains("validation"));
  EXPECT_EQ(run["n_train"], 24);
  EXPECT_EQ(run["n_val"], 6);
  for (const auto& h : run["history"]) EXPECT_TRUE(h.contains("val_accuracy")) << h.dump();
}
