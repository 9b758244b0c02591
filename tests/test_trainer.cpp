// train/trainer on the synthetic keyword task (fixtures/make_synthetic_task.py) with tiny BERT checkpoints.
#include "kotsu/train/trainer.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "kotsu/core/error.hpp"
#include "kotsu/infer/evaluate.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/io/safetensors.hpp"
#include "kotsu/models/lora.hpp"
#include "kotsu/models/text_model.hpp"
#include "kotsu/train/head_fit.hpp"
#include "kotsu/train/precision.hpp"
#include "test_util.hpp"

using namespace kotsu;

namespace {

TrainOptions task_options(const std::string& tag) {
  TrainOptions o;
  o.model = test::fixture("tiny_bert_init");
  o.data = test::fixture("task/train.csv");
  o.out = test::temp_dir(tag) + "/run";
  // a randomly initialised encoder can sit on a plateau for a while: these settings learned the task on
  // every one of six seeds tried (larger rates or batches sometimes stalled at two classes of three)
  o.lr = 1e-3;
  o.batch_size = 8;
  o.epochs = 25;
  o.strategy = "full";  // the trainer's mechanics on the full strategy (auto would choose contrastive here)
  o.patience = 0;
  o.seed = 3;
  return o;
}

TrainHooks quiet() {
  TrainHooks h;
  h.quiet = true;
  return h;
}

}  // namespace

TEST(Trainer, FullFineTuneLearnsTheSyntheticTask) {
  auto o = task_options("full");
  auto r = train_classifier(o, quiet());
  EXPECT_EQ(r.epochs_run, 25);
  EXPECT_GE(r.best_metric, 0.95);
  auto ev = evaluate_run(o.out, test::fixture("task/test.tsv"), TextColumns{});
  EXPECT_GE(ev.metrics.accuracy, 0.95);
  // the run directory is a Hugging Face model directory with labels
  auto cfg = nlohmann::json::parse(read_file(o.out + "/config.json"));
  EXPECT_EQ(cfg["id2label"]["0"], "card");
  EXPECT_EQ(cfg["architectures"][0], "BertForSequenceClassification");
  auto run = nlohmann::json::parse(read_file(o.out + "/run.json"));
  EXPECT_EQ(run["status"], "finished");
  EXPECT_EQ(run["history"].size(), 25u);
  // training loss falls
  EXPECT_LT(run["history"][24]["train_loss"].get<double>(), 0.5 * run["history"][0]["train_loss"].get<double>());
}

TEST(Trainer, HeadStrategyLeavesEncoderBitIdentical) {
  auto o = task_options("head");
  o.model = test::fixture("tiny_bert");  // has a head for label_0..2: other names, so a fresh head
  o.strategy = "head";
  o.epochs = 5;
  train_classifier(o, quiet());
  auto before = load_safetensors(test::fixture("tiny_bert/model.safetensors"));
  auto after = load_safetensors(o.out + "/model.safetensors");
  size_t same = 0;
  for (auto& [name, t] : after) {
    if (name.rfind("classifier.", 0) == 0) {
      EXPECT_FALSE(torch::equal(t, before.at(name))) << name << " should have trained";
      continue;
    }
    ASSERT_TRUE(before.count(name)) << name;
    EXPECT_TRUE(torch::equal(t, before.at(name))) << name << " changed";
    ++same;
  }
  EXPECT_GT(same, 30u);
}

TEST(Trainer, HeadTrialsReuseTheFeaturesTheyShare) {
  // a hyper-parameter search runs many head fits on the same data in one process: the second encodes nothing
  auto o = task_options("head-cache");
  o.model = test::fixture("tiny_bert");
  o.strategy = "head";
  o.seed = 11;  // a split no other test uses, so the first run computes
  const TrainResult a = train_classifier(o, quiet());
  EXPECT_FALSE(a.history[0]["features_reused"].get<bool>());
  auto o2 = o;
  o2.out = o.out + "-2";
  o2.label_smoothing = 0.1;  // a head option: same features
  const TrainResult b = train_classifier(o2, quiet());
  EXPECT_TRUE(b.history[0]["features_reused"].get<bool>());
  auto o3 = o;
  o3.out = o.out + "-3";
  const TrainResult c = train_classifier(o3, quiet());
  EXPECT_TRUE(c.history[0]["features_reused"].get<bool>());
  EXPECT_DOUBLE_EQ(c.best_metric, a.best_metric);  // the same fit as from freshly encoded features
  EXPECT_DOUBLE_EQ(c.history[0]["val_loss"].get<double>(), a.history[0]["val_loss"].get<double>());
  auto o4 = o;
  o4.out = o.out + "-4";
  o4.max_len = 16;  // changes the features: encoded again
  const TrainResult d = train_classifier(o4, quiet());
  EXPECT_FALSE(d.history[0]["features_reused"].get<bool>());
}

TEST(Trainer, PartialTrainsOnlyTopLayersPoolerAndHead) {
  auto o = task_options("partial");
  o.strategy = "partial";
  o.unfreeze = 1;
  o.epochs = 2;
  train_classifier(o, quiet());
  auto before = load_safetensors(test::fixture("tiny_bert_init/model.safetensors"));
  auto after = load_safetensors(o.out + "/model.safetensors");
  for (auto& [name, t] : after) {
    if (name.rfind("classifier.", 0) == 0) continue;
    bool top = name.find("encoder.layer.1.") != std::string::npos || name.find("pooler") != std::string::npos;
    if (name.find(".bias") == std::string::npos && name.find("LayerNorm") == std::string::npos) {
      EXPECT_EQ(!torch::equal(t, before.at(name)), top) << name;
    }
  }
}

TEST(Trainer, ResumeAfterStopEqualsUninterruptedRun) {
  auto a = task_options("resume-a");
  a.epochs = 4;
  a.grad_accum = 2;
  a.batch_size = 4;
  train_classifier(a, quiet());

  auto b = a;
  b.out = test::temp_dir("resume-b") + "/run";
  TrainHooks stop = quiet();
  stop.stop_after_epoch = 2;
  auto partial = train_classifier(b, stop);
  EXPECT_EQ(partial.epochs_run, 2);
  auto run = nlohmann::json::parse(read_file(b.out + "/run.json"));
  EXPECT_EQ(run["status"], "running");
  auto r = resume_classifier(b.out, quiet());
  EXPECT_EQ(r.epochs_run, 4);
  auto wa = load_safetensors(a.out + "/checkpoint-4/model.safetensors");
  auto wb = load_safetensors(b.out + "/checkpoint-4/model.safetensors");
  ASSERT_EQ(wa.size(), wb.size());
  for (auto& [name, t] : wa) EXPECT_TRUE(torch::equal(t, wb.at(name))) << name;
  auto ha = nlohmann::json::parse(read_file(a.out + "/run.json"))["history"];
  auto hb = nlohmann::json::parse(read_file(b.out + "/run.json"))["history"];
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(ha[i]["train_loss"], hb[i]["train_loss"]) << i;
  EXPECT_FALSE(std::filesystem::exists(b.out + "/checkpoint-2"));  // superseded checkpoints are dropped
}

TEST(Trainer, EarlyStoppingStopsAndKeepsTheBestEpoch) {
  auto o = task_options("early");
  o.epochs = 40;
  o.patience = 2;
  auto r = train_classifier(o, quiet());
  EXPECT_TRUE(r.stopped_early);
  EXPECT_LT(r.epochs_run, 40);
  // the last two epochs did not beat the accuracy reached before them
  const auto& hist = r.history;
  double before = 0;
  for (size_t i = 0; i + 2 < hist.size(); ++i) before = std::max(before, hist[i]["val_accuracy"].get<double>());
  EXPECT_LE(hist[hist.size() - 1]["val_accuracy"].get<double>(), before);
  EXPECT_LE(hist[hist.size() - 2]["val_accuracy"].get<double>(), before);
  // the best epoch has the best accuracy, and among equals the lowest validation loss
  auto h = r.history;
  auto best = h[static_cast<size_t>(r.best_epoch - 1)];
  for (const auto& e : h) {
    EXPECT_LE(e["val_accuracy"].get<double>(), best["val_accuracy"].get<double>());
    if (e["val_accuracy"] == best["val_accuracy"]) {
      EXPECT_GE(e["val_loss"].get<double>(), best["val_loss"].get<double>());
    }
  }
}

// validation: false (how a search retrains its best configuration): every row of data and val_data trains,
// every epoch runs whatever the patience, no validation metric exists, and the last epoch's model is kept.
TEST(Trainer, WithoutValidationAllRowsTrainForExactlyTheEpochs) {
  auto o = task_options("noval");
  o.epochs = 4;
  o.patience = 1;
  o.validation = false;
  o.val_data = test::fixture("task/test.tsv");
  auto r = train_classifier(o, quiet());
  EXPECT_EQ(r.epochs_run, 4);
  EXPECT_FALSE(r.stopped_early);
  EXPECT_TRUE(std::isnan(r.best_metric));
  EXPECT_EQ(r.best_epoch, 4);
  const auto run = nlohmann::json::parse(read_file(o.out + "/run.json"));
  auto rows = [](const std::string& path) {  // data lines after the header
    const std::string text = read_file(path);
    return static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) - 1;
  };
  const size_t n_train = rows(o.data), n_val = rows(o.val_data);
  EXPECT_EQ(run["n_train"].get<size_t>(), n_train + n_val);
  EXPECT_EQ(run["n_val"], 0);
  EXPECT_EQ(run["status"], "finished");
  EXPECT_EQ(run["options"]["validation"], false);
  EXPECT_TRUE(run["best_metric"]["value"].is_null());
  ASSERT_EQ(run["history"].size(), 4u);
  for (const auto& h : run["history"]) EXPECT_FALSE(h.contains("val_accuracy")) << h.dump();
  // the saved model is the last epoch's: equal to the resumable checkpoint of epoch 4
  SafetensorsReader saved(o.out + "/model.safetensors"), last(o.out + "/checkpoint-4/model.safetensors");
  const std::string name = "classifier.weight";
  ASSERT_TRUE(saved.find(name) && last.find(name));
  EXPECT_TRUE(torch::equal(saved.tensor(name), last.tensor(name)));
  // the head strategy fits on everything too
  auto h = task_options("noval-head");
  h.strategy = "head";
  h.validation = false;
  auto hr = train_classifier(h, quiet());
  EXPECT_TRUE(std::isnan(hr.best_metric));
  EXPECT_EQ(nlohmann::json::parse(read_file(h.out + "/run.json"))["n_train"].get<size_t>(), n_train);
}

TEST(Trainer, SameSeedSameResultOtherSeedDiffers) {
  auto a = task_options("seed-a");
  a.epochs = 2;
  auto b = a;
  b.out = test::temp_dir("seed-b") + "/run";
  auto c = a;
  c.out = test::temp_dir("seed-c") + "/run";
  c.seed = 4;
  train_classifier(a, quiet());
  train_classifier(b, quiet());
  train_classifier(c, quiet());
  EXPECT_EQ(read_file(a.out + "/checkpoint-2/model.safetensors"), read_file(b.out + "/checkpoint-2/model.safetensors"));
  EXPECT_NE(read_file(a.out + "/checkpoint-2/model.safetensors"), read_file(c.out + "/checkpoint-2/model.safetensors"));
}

TEST(Trainer, RefusesBadOptionsAndExistingRuns) {
  auto o = task_options("bad");
  o.strategy = "everything";
  EXPECT_THROW(train_classifier(o, quiet()), Error);
  o = task_options("bad2");
  o.epochs = 1;
  train_classifier(o, quiet());
  try {
    train_classifier(o, quiet());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--resume"), std::string::npos);
  }
  o = task_options("bad-out");
  o.out = o.model;  // would overwrite the pretrained model
  try {
    train_classifier(o, quiet());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("overwrite the pretrained model"), std::string::npos) << e.what();
  }
  o = task_options("bad3");
  o.columns.label = "category";
  try {
    train_classifier(o, quiet());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("column 'category' not found"), std::string::npos) << e.what();
  }
}

TEST(Trainer, Bf16AutocastRunsLinearLayersInBf16OnlyInsideItsScope) {
  torch::nn::Linear lin(4, 2);
  auto x = torch::randn({3, 4});
  {
    Bf16Autocast on(true, torch::kCPU);
    EXPECT_EQ(lin(x).scalar_type(), torch::kBFloat16);
  }
  EXPECT_EQ(lin(x).scalar_type(), torch::kFloat);
  Bf16Autocast off(false, torch::kCPU);
  EXPECT_EQ(lin(x).scalar_type(), torch::kFloat);
}

TEST(Trainer, Bf16AutocastTrainsToTheSameAccuracy) {
  auto o = task_options("bf16");
  o.bf16 = true;
  auto r = train_classifier(o, quiet());
  EXPECT_GE(r.best_metric, 0.95);
  auto w = load_safetensors(o.out + "/model.safetensors");
  for (auto& [n, t] : w) EXPECT_EQ(t.scalar_type(), torch::kFloat) << n;  // float32 master weights
}

// The head fit (train/head_fit) as a regularised logistic regression: separable blobs are fitted, the fit is
// deterministic, and noisy labels make the validation pick a stronger L2 than clean ones.
TEST(HeadFit, FitsLikeRegularisedLogisticRegression) {
  TextModel m = load_text_model(test::fixture("tiny_bert_init"), {"a", "b"});
  const int64_t F = m.config.hidden_size;
  auto gen = at::detail::createCPUGenerator(3);
  auto blobs = [&](int64_t n, double flip) {
    auto y = at::randint(0, 2, {n}, gen, torch::kLong);
    auto dir = torch::linspace(-1, 1, F);
    auto x = at::normal(0.0, 1.0, {n, F}, gen) * 0.5 + (2 * y.to(torch::kFloat) - 1).unsqueeze(1) * dir * 0.3;
    auto noisy = at::rand({n}, gen) < flip;
    return std::make_pair(x, torch::where(noisy, 1 - y, y));
  };
  auto logits = [&](const torch::Tensor& t) {
    torch::NoGradGuard ng;
    return m.model->head(t);
  };
  auto [x, y] = blobs(200, 0.0);
  auto [xv, yv] = blobs(100, 0.0);
  HeadFit clean = fit_head(*m.model, x, y, 11);
  EXPECT_EQ(clean.candidates, 10);
  const torch::Tensor first = logits(xv);
  EXPECT_GT((first.argmax(1) == yv).to(torch::kFloat).mean().item<double>(), 0.95);
  fit_head(*m.model, x, y, 11);  // same data and seed: the same head
  EXPECT_TRUE(torch::equal(first, logits(xv)));
  // noisy labels (35% flipped) and fewer rows: cross-validation picks a stronger L2
  auto [xn, yn] = blobs(60, 0.35);
  HeadFit noisy = fit_head(*m.model, xn, yn, 11);
  EXPECT_GT(noisy.l2, clean.l2);
  // the out-of-fold logits are those the chosen strength's cross-validated loss was computed from
  ASSERT_TRUE(noisy.oof_logits.defined());
  EXPECT_EQ(noisy.folds, 3);
  EXPECT_EQ(noisy.oof_logits.sizes(), (std::vector<int64_t>{60, 2}));
  const double oof_loss = torch::nn::functional::cross_entropy(noisy.oof_logits, yn).item<double>();
  EXPECT_NEAR(oof_loss, noisy.cv_loss, test::float32_bound(std::max(1.0, noisy.cv_loss), 60, 2));
  // ... and not the final fit's own predictions of its training rows, which fit better
  const double train_loss = torch::nn::functional::cross_entropy(logits(xn), yn).item<double>();
  EXPECT_LT(train_loss, oof_loss);
}

// Without --val-data the head strategy holds nothing out: every example fits the head, and the validation
// scores are the out-of-fold predictions of the cross-validation that chose its L2 strength (run.json says so).
TEST(Trainer, HeadFitsEveryExampleAndValidatesOutOfFold) {
  auto o = task_options("head-oof");
  o.model = test::fixture("tiny_bert");
  o.strategy = "head";
  const auto r = train_classifier(o, quiet());
  const auto run = nlohmann::json::parse(read_file(o.out + "/run.json"));
  EXPECT_EQ(run["n_train"], 300);  // every row of task/train.csv
  EXPECT_EQ(run["n_val"], 0);
  EXPECT_NE(run["validation"].get<std::string>().find("out-of-fold"), std::string::npos);
  const double acc = run["history"][0]["val_accuracy"].get<double>();
  EXPECT_EQ(r.best_metric, acc);
  EXPECT_GT(acc, 0.0);
  EXPECT_LE(acc, 1.0);
  ASSERT_TRUE(run.contains("val_recall_per_class"));
  EXPECT_EQ(run["val_recall_per_class"].size(), 3u);
  // a --val-data file still validates as before
  auto v = o;
  v.out = test::temp_dir("head-val") + "/run";
  v.val_data = test::fixture("task/test.tsv");
  train_classifier(v, quiet());
  const auto rv = nlohmann::json::parse(read_file(v.out + "/run.json"));
  EXPECT_GT(rv["n_val"].get<int>(), 0);
  EXPECT_FALSE(rv.contains("validation"));
}

TEST(Trainer, LoraTrainsAdaptersAndTheHeadAndSavesAnOrdinaryModel) {
  auto o = task_options("lora");
  o.strategy = "lora";
  o.lora_targets = "all-linear";
  o.lora_r = 8;
  o.lora_alpha = 16;
  o.lr = 3e-3;
  auto r = train_classifier(o, quiet());
  EXPECT_GE(r.best_metric, 0.9);
  // the run directory holds the adapted model with the adapters folded in: evaluation needs nothing else
  auto w = load_safetensors(o.out + "/model.safetensors");
  for (const auto& [name, t] : w) EXPECT_EQ(name.find("lora_"), std::string::npos) << name;
  auto ev = evaluate_run(o.out, test::fixture("task/test.tsv"), TextColumns{});
  EXPECT_GE(ev.metrics.accuracy, 0.9);
  // adapted layers changed, nothing else of the encoder did (embeddings, norms, biases, pooler frozen)
  auto before = load_safetensors(test::fixture("tiny_bert_init/model.safetensors"));
  for (const auto& [name, t] : w) {
    if (name.rfind("classifier.", 0) == 0) continue;
    const bool adapted = name.find("encoder.layer.") != std::string::npos && name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0 &&
                         name.find("LayerNorm") == std::string::npos;
    EXPECT_EQ(!torch::equal(t, before.at(name)), adapted) << name;
  }
  // and a PEFT adapter beside it: the base model plus the adapter gives the merged model's logits
  auto cfg = nlohmann::json::parse(read_file(o.out + "/adapter_config.json"));
  EXPECT_EQ(cfg["task_type"], "SEQ_CLS");
  EXPECT_EQ(cfg["modules_to_save"], nlohmann::json::array({"classifier"}));
  auto adapter = load_safetensors(o.out + "/adapter_model.safetensors");
  EXPECT_TRUE(adapter.count("base_model.model.classifier.weight"));
  EXPECT_TRUE(adapter.count("base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight"));
  TextModel merged = load_text_model(o.out);
  TextModel base = load_text_model(test::fixture("tiny_bert_init"), {"card", "loan", "other"});
  load_peft_adapter(*base.model, o.out);
  merged.model->eval();
  base.model->eval();
  TextBatch batch;
  batch.input_ids = torch::randint(0, merged.config.vocab_size, {2, 10}, torch::kLong);
  batch.attention_mask = torch::ones({2, 10}, torch::kLong);
  torch::NoGradGuard ng;
  const auto a = merged.model->logits(batch), b = base.model->logits(batch);
  // W x + B (A x) and (W + B A) x round differently: the float32 bound of the longest sum of a layer at
  // the logits' magnitude, along the 6 sums of each layer plus the pooler and the head
  const double depth = 6.0 * static_cast<double>(merged.config.num_hidden_layers) + 2;
  EXPECT_LT((a - b).abs().max().item<double>(),
            test::float32_bound(a.abs().max().item<double>(), static_cast<double>(merged.config.intermediate_size), depth));
  // only the adapters and the head trained: a small share of the parameters
  auto run = nlohmann::json::parse(read_file(o.out + "/run.json"));
  EXPECT_EQ(run["options"]["strategy"], "lora");
}

TEST(Trainer, LoraRunsResumeToTheUninterruptedResult) {
  auto a = task_options("lora-resume-a");
  a.strategy = "lora";
  a.lr = 3e-3;
  a.epochs = 3;
  train_classifier(a, quiet());
  auto b = a;
  b.out = test::temp_dir("lora-resume-b") + "/run";
  TrainHooks stop = quiet();
  stop.stop_after_epoch = 1;
  train_classifier(b, stop);
  resume_classifier(b.out, quiet());
  auto wa = load_safetensors(a.out + "/checkpoint-3/model.safetensors");
  auto wb = load_safetensors(b.out + "/checkpoint-3/model.safetensors");
  ASSERT_EQ(wa.size(), wb.size());
  EXPECT_TRUE(wa.count("bert.encoder.layer.0.attention.self.query.lora_B.weight"));  // checkpoints keep the adapters apart
  for (auto& [name, t] : wa) EXPECT_TRUE(torch::equal(t, wb.at(name))) << name;
}
