// train/sampling (--balance) and the --l1 penalty: rebalanced epochs hold every class equally often,
// the head fit weights classes under any --balance, and L1 shrinks the weights it penalises.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <set>

#include "kotsu/infer/evaluate.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/io/safetensors.hpp"
#include "kotsu/train/sampling.hpp"
#include "kotsu/train/trainer.hpp"
#include "test_util.hpp"

namespace kotsu {
namespace {

std::vector<int64_t> imbalanced() {
  std::vector<int64_t> y;
  for (int c = 0; c < 3; ++c)
    for (int k = 0; k < (c == 0 ? 10 : c == 1 ? 3 : 5); ++k) y.push_back(c);
  return y;
}

std::map<int64_t, int> counts(const std::vector<int64_t>& y, const std::vector<size_t>& order) {
  std::map<int64_t, int> m;
  for (size_t i : order) ++m[y.at(i)];
  return m;
}

TEST(Sampling, OversampleEqualisesClassesAndKeepsEveryExample) {
  auto y = imbalanced();
  std::mt19937_64 rng(1);
  auto order = epoch_order(y, "oversample", rng);
  EXPECT_EQ(order.size(), 30u);
  EXPECT_EQ(epoch_size(y, "oversample"), 30u);
  for (auto [c, n] : counts(y, order)) EXPECT_EQ(n, 10) << c;
  std::set<size_t> seen(order.begin(), order.end());
  EXPECT_EQ(seen.size(), y.size());  // every original example at least once
}

TEST(Sampling, UndersampleTakesAFreshSubsetEachEpoch) {
  auto y = imbalanced();
  std::mt19937_64 a(1), b(2);
  auto e1 = epoch_order(y, "undersample", a), e2 = epoch_order(y, "undersample", b);
  EXPECT_EQ(e1.size(), 9u);
  for (auto [c, n] : counts(y, e1)) EXPECT_EQ(n, 3) << c;
  EXPECT_NE(std::set<size_t>(e1.begin(), e1.end()), std::set<size_t>(e2.begin(), e2.end()));
  std::mt19937_64 c(1);
  EXPECT_EQ(epoch_order(y, "undersample", c), e1);  // same seed, same epoch
  std::mt19937_64 d(1);
  auto plain = epoch_order(y, "none", d);
  EXPECT_EQ(std::set<size_t>(plain.begin(), plain.end()).size(), y.size());
  EXPECT_EQ(plain.size(), y.size());
}

TrainHooks quiet() {
  TrainHooks h;
  h.quiet = true;
  return h;
}

// The synthetic task with the "loan" class cut to 10 rows (from 100).
std::string imbalanced_task(const std::string& dir) {
  const std::string rows = read_file(test::fixture("task/train.csv"));
  std::string out = rows.substr(0, rows.find('\n') + 1);
  int loans = 0;
  for (size_t pos = out.size(); pos < rows.size();) {
    size_t nl = rows.find('\n', pos);
    if (nl == std::string::npos) nl = rows.size();
    const std::string line = rows.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.find("\"loan\"") != std::string::npos && ++loans > 10) continue;
    out += line + "\n";
  }
  write_atomic(dir + "/train.csv", out);
  return dir + "/train.csv";
}

TEST(Sampling, BalancedHeadPredictsTheRareClassMoreOften) {
  const std::string dir = test::temp_dir("balance-head");
  TrainOptions o;
  o.model = test::fixture("tiny_bert_init");
  o.data = imbalanced_task(dir);
  o.strategy = "head";
  o.threads = 1;
  auto predicted_loans = [&](const std::string& balance) {
    o.balance = balance;
    o.out = dir + "/run-" + balance;
    train_classifier(o, quiet());
    EvalResult r = evaluate_run(o.out, test::fixture("task/test.tsv"), TextColumns{});
    int64_t n = 0;
    for (int64_t p : r.predicted) n += r.labels[static_cast<size_t>(p)] == "loan";
    return n;
  };
  const int64_t plain = predicted_loans("none"), weighted = predicted_loans("oversample");
  EXPECT_GT(weighted, plain) << "rare class predicted " << plain << " times unweighted, " << weighted << " weighted";
}

TEST(Sampling, L1ShrinksThePenalisedWeights) {
  const std::string dir = test::temp_dir("l1");
  auto l1_after = [&](double l1) {
    TrainOptions o;
    o.model = test::fixture("tiny_bert_init");
    o.data = test::fixture("task/train.csv");
    o.out = dir + "/run-" + std::to_string(l1);
    o.strategy = "full";
    o.epochs = 2;
    o.lr = 1e-3;
    o.patience = 0;
    o.head_first = false;
    o.threads = 1;
    o.l1 = l1;
    o.balance = "undersample";  // also runs an epoch of the undersampled order
    train_classifier(o, quiet());
    double sum = 0;
    for (auto& [name, t] : load_safetensors(o.out + "/model.safetensors"))
      if (t.dim() >= 2 && name.find("embeddings") == std::string::npos) sum += t.abs().sum().item<double>();
    return sum;
  };
  const double plain = l1_after(0), penalised = l1_after(1e-4);
  EXPECT_LT(penalised, 0.95 * plain) << plain << " vs " << penalised;
}

}  // namespace
}  // namespace kotsu
