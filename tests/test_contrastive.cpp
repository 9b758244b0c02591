// --strategy contrastive (train/contrastive, the trainer's contrastive branch) and mean pooling
// (models/text_classifier mean_pooled, EncoderConfig::pooling, io/model_dir declares_mean_pooling).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "kotsu/core/error.hpp"
#include "kotsu/infer/evaluate.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/io/hf_config.hpp"
#include "kotsu/io/model_dir.hpp"
#include "kotsu/io/safetensors.hpp"
#include "kotsu/models/text_model.hpp"
#include "kotsu/train/contrastive.hpp"
#include "kotsu/train/trainer.hpp"
#include "test_util.hpp"

using namespace kotsu;
namespace fs = std::filesystem;

namespace {

std::vector<size_t> shuffled(size_t n, uint64_t seed) {
  std::vector<size_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = i;
  std::mt19937_64 rng(seed);
  std::shuffle(v.begin(), v.end(), rng);
  return v;
}

size_t positive_pairs(const std::vector<std::vector<size_t>>& batches, const std::vector<int64_t>& y) {
  size_t n = 0;
  for (const auto& b : batches)
    for (size_t i = 0; i < b.size(); ++i)
      for (size_t j = i + 1; j < b.size(); ++j) n += y[b[i]] == y[b[j]];
  return n;
}

}  // namespace

// Every example once; full batches but the last; each class's examples come in runs of up to 4 (contiguous,
// in the epoch's order), so batches of 8 over 20 classes hold several times the same-class pairs of the same
// order cut plainly (two full runs give 12 pairs a batch; chance about 1.4).
TEST(Contrastive, ClassGroupedBatchesHoldEveryExampleOnceWithClassesTogether) {
  std::vector<int64_t> y;
  for (int64_t c = 0; c < 20; ++c)
    for (int64_t k = 0; k < 5 + c % 3; ++k) y.push_back(c);  // 5..7 per class: runs of 4 and a remainder
  const std::vector<size_t> order = shuffled(y.size(), 7);
  std::mt19937_64 rng(1);
  const auto batches = class_grouped_batches(order, y, 8, 4, rng);
  std::multiset<size_t> seen;
  for (size_t b = 0; b < batches.size(); ++b) {
    if (b + 1 < batches.size()) { EXPECT_EQ(batches[b].size(), 8u); }
    EXPECT_LE(batches[b].size(), 8u);
    seen.insert(batches[b].begin(), batches[b].end());
  }
  EXPECT_EQ(seen, std::multiset<size_t>(order.begin(), order.end()));
  EXPECT_EQ(batches.size(), (y.size() + 7) / 8);
  std::vector<std::vector<size_t>> plain;
  for (size_t i = 0; i < order.size(); i += 8) plain.emplace_back(order.begin() + i, order.begin() + std::min(order.size(), i + 8));
  EXPECT_GT(positive_pairs(batches, y), 3 * positive_pairs(plain, y));
  // each class's examples keep their order of `order` (the epoch's shuffle) inside a class
  std::map<int64_t, std::vector<size_t>> in_order, in_batches;
  for (size_t i : order) in_order[y[i]].push_back(i);
  std::vector<size_t> flat;
  for (const auto& b : batches) flat.insert(flat.end(), b.begin(), b.end());
  for (size_t i : flat) in_batches[y[i]].push_back(i);
  for (auto& [c, idx] : in_order) {
    std::vector<std::vector<size_t>> runs;  // the class's runs in `order`: [0,4), [4,8), ...
    for (size_t at = 0; at < idx.size(); at += 4) runs.emplace_back(idx.begin() + at, idx.begin() + std::min(idx.size(), at + 4));
    for (const auto& run : runs) {  // each run sits contiguously in the flattened batches
      auto start = std::find(flat.begin(), flat.end(), run[0]);
      ASSERT_NE(start, flat.end());
      EXPECT_TRUE(std::equal(run.begin(), run.end(), start)) << "class " << c;
    }
  }
  std::mt19937_64 again(1);
  EXPECT_EQ(class_grouped_batches(order, y, 8, 4, again), batches);  // seeded
}

// The loss equals SetFit's CosineSimilarityLoss (MSE between cosine and 1/0) over all pairs i < j with the
// positive and negative pairs weighted equally, computed here pair by pair in float64.
TEST(Contrastive, PairLossIsTheCosineLossOverEveryPair) {
  torch::manual_seed(5);
  const auto f = torch::randn({7, 16});
  const auto y = torch::tensor({0, 1, 0, 2, 1, 0, 2}, torch::kLong);
  const auto d = f.to(torch::kDouble);
  double pos = 0, neg = 0;
  int np = 0, nn = 0;
  for (int64_t i = 0; i < 7; ++i)
    for (int64_t j = i + 1; j < 7; ++j) {
      const double c = (d[i] * d[j]).sum().item<double>() / (d[i].norm().item<double>() * d[j].norm().item<double>());
      if (y[i].item<int64_t>() == y[j].item<int64_t>()) pos += (c - 1) * (c - 1), ++np;
      else neg += c * c, ++nn;
    }
  const double want = 0.5 * pos / np + 0.5 * neg / nn;
  const double got = pair_similarity_loss(f, y).item<double>();
  // 16-term dot products and norms in float32, then 21 pairs averaged: a few float32 ulps of values below 4
  EXPECT_NEAR(got, want, test::float32_bound(4.0, 16, 4));
  // one kind of pair alone: that kind's mean; one example: 0 with a gradient path
  const auto same = torch::zeros({7}, torch::kLong);
  double only = 0;
  for (int64_t i = 0; i < 7; ++i)
    for (int64_t j = i + 1; j < 7; ++j) {
      const double c = (d[i] * d[j]).sum().item<double>() / (d[i].norm().item<double>() * d[j].norm().item<double>());
      only += (c - 1) * (c - 1);
    }
  EXPECT_NEAR(pair_similarity_loss(f, same).item<double>(), only / 21, test::float32_bound(4.0, 16, 4));
  auto one = torch::randn({1, 16}, torch::requires_grad());
  auto l = pair_similarity_loss(one, torch::zeros({1}, torch::kLong));
  EXPECT_EQ(l.item<double>(), 0.0);
  l.backward();
  EXPECT_TRUE(one.grad().defined());
  // gradient descent on the loss pulls a class together and pushes classes to orthogonal
  auto x = f.clone().requires_grad_(true);
  torch::optim::SGD opt({x}, 0.5);
  const double start = pair_similarity_loss(x, y).item<double>();
  for (int k = 0; k < 200; ++k) {
    opt.zero_grad();
    pair_similarity_loss(x, y).backward();
    opt.step();
  }
  EXPECT_LT(pair_similarity_loss(x, y).item<double>(), 0.05 * start);
}

// mean_pooled is sentence-transformers' Pooling(mean) + Normalize: padding positions do not count.
TEST(Contrastive, MeanPoolingIgnoresPaddingAndIsUnitLength) {
  torch::manual_seed(2);
  auto h = torch::randn({2, 5, 8});
  auto mask = torch::tensor({1, 1, 1, 0, 0, 1, 1, 1, 1, 1}, torch::kLong).view({2, 5});
  const auto e = mean_pooled(h, mask);
  const auto want0 = h[0].narrow(0, 0, 3).mean(0);
  EXPECT_TRUE(torch::allclose(e[0], want0 / want0.norm(), 1e-6, 1e-6));
  auto h2 = h.clone();
  h2[0][4] += 100;  // a padding position
  EXPECT_TRUE(torch::equal(mean_pooled(h2, mask), e));
  EXPECT_NEAR(e.norm(2, 1)[1].item<double>(), 1.0, 1e-6);
}

// kotsu_pooling in config.json round-trips, bad values are refused, and a sentence-transformers directory
// declares its pooling through modules.json + the Pooling module's config.
TEST(Contrastive, PoolingIsReadFromConfigAndSentenceTransformersFiles) {
  const std::string dir = test::temp_dir("pooling");
  const std::string cfg_path = dir + "/config.json";
  nlohmann::json c = nlohmann::json::parse(read_file(test::fixture("tiny_bert") + "/config.json"));
  EXPECT_EQ(EncoderConfig::from_json(c, cfg_path).pooling, "cls");
  c["kotsu_pooling"] = "mean";
  EncoderConfig e = EncoderConfig::from_json(c, cfg_path);
  EXPECT_EQ(e.pooling, "mean");
  EXPECT_EQ(e.to_json()["kotsu_pooling"], "mean");
  e.pooling = "cls";
  EXPECT_FALSE(e.to_json().contains("kotsu_pooling"));
  c["kotsu_pooling"] = "max";
  EXPECT_THROW(EncoderConfig::from_json(c, cfg_path), Error);

  EXPECT_FALSE(declares_mean_pooling(dir));  // no modules.json
  std::ofstream(dir + "/modules.json") << R"([{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
    {"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"}])";
  fs::create_directories(dir + "/1_Pooling");
  std::ofstream(dir + "/1_Pooling/config.json") << R"({"pooling_mode_cls_token": false, "pooling_mode_mean_tokens": true})";
  EXPECT_TRUE(declares_mean_pooling(dir));
  std::ofstream(dir + "/1_Pooling/config.json") << R"({"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false})";
  EXPECT_FALSE(declares_mean_pooling(dir));
  std::ofstream(dir + "/1_Pooling/config.json") << R"({"pooling_mode_mean_tokens": "yes"})";
  try {
    declares_mean_pooling(dir);
    ADD_FAILURE() << "a non-boolean mode must be refused";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("pooling_mode_mean_tokens"), std::string::npos) << err.what();
  }
  std::ofstream(dir + "/modules.json") << "{}";
  EXPECT_THROW(declares_mean_pooling(dir), Error);
}

// A contrastive run on the synthetic task: the encoder trains, the saved model pools by the mean
// (kotsu_pooling in config.json) and its head was fitted on the tuned embeddings, so evaluation reaches its
// validation score; the pair loss falls.
TEST(Contrastive, RunTunesTheEncoderAndFitsTheHeadOnItsEmbeddings) {
  TrainOptions o;
  o.model = test::fixture("tiny_bert");
  o.data = test::fixture("task/train.csv");
  o.out = test::temp_dir("contrastive") + "/run";
  o.strategy = "contrastive";
  o.lr = 5e-3;  // the tiny encoder's random features need a large rate (1e-3 reached 0.9 only after 15 epochs)
  o.batch_size = 16;
  o.epochs = 10;
  o.patience = 0;
  o.seed = 3;
  TrainHooks quiet;
  quiet.quiet = true;
  const auto r = train_classifier(o, quiet);
  EXPECT_EQ(r.epochs_run, 10);
  const auto cfg = nlohmann::json::parse(read_file(o.out + "/config.json"));
  EXPECT_EQ(cfg["kotsu_pooling"], "mean");
  const auto run = nlohmann::json::parse(read_file(o.out + "/run.json"));
  EXPECT_EQ(run["status"], "finished");
  EXPECT_EQ(run["options"]["strategy"], "contrastive");
  EXPECT_EQ(run["n_val"], 0);  // nothing held out: every example trains, validation is out of fold at the end
  const auto& h = run["history"];
  EXPECT_LT(h[h.size() - 1]["train_loss"].get<double>(), 0.2 * h[0]["train_loss"].get<double>());
  // the encoder moved; the saved head (fitted after the last epoch) scores the test file as it scored out of fold
  auto before = load_safetensors(test::fixture("tiny_bert") + "/model.safetensors");
  auto after = load_safetensors(o.out + "/model.safetensors");
  const std::string q = "bert.encoder.layer.0.attention.self.query.weight";
  EXPECT_FALSE(torch::equal(before.at(q), after.at(q)));
  EXPECT_GE(r.best_metric, 0.9);
  const auto ev = evaluate_run(o.out, test::fixture("task/test.tsv"), TextColumns{});
  EXPECT_GE(ev.metrics.accuracy, 0.9);
  EXPECT_EQ(load_text_model(o.out).config.pooling, "mean");
}
