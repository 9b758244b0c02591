// The real all-MiniLM-L6-v2 (assets/models/, from PyPI; see test_real_models.cpp) fine-tuned on SST-2
// sentences from ../shared through the CLI with each strategy (head, partial, full, lora, contrastive), then
// evaluated, exported to ONNX and served; its answers are checked against the real libraries reading kotsu's
// files as a user would (tests/oracles/classify.py in the reference environment): transformers' AutoModel +
// sentence-transformers' mean pooling + the run's linear head for the mean-pooled runs (MiniLM declares mean
// pooling), AutoModelForSequenceClassification for the LoRA run (--pooling cls), AutoTokenizer on the run
// directory, onnxruntime on the ONNX file, and for the LoRA run peft's PeftModel on the adapter and its
// merge_and_unload().
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "test_util.hpp"

using namespace kotsu;
using nlohmann::json;

namespace {

std::string source(const std::string& rel) { return std::string(KOTSU_SOURCE_DIR) + "/" + rel; }

// The first `n` rows after `skip` of an SST-2 split, written as a TSV with its header; their sentences.
std::vector<std::string> sst2_rows(const std::string& split, size_t skip, size_t n, const std::string& out) {
  std::ifstream in(test::shared_dir() + "/data/text/sst2/" + split + ".tsv");
  std::ofstream o(out);
  std::string line;
  std::getline(in, line);  // the splits name the text column differently
  o << "label\tsentence\n";
  std::vector<std::string> texts;
  for (size_t i = 0; texts.size() < n && std::getline(in, line); ++i) {
    if (i < skip) continue;
    o << line << "\n";
    texts.push_back(line.substr(line.find('\t') + 1));
  }
  return texts;
}

std::vector<double> log_softmax(const std::vector<double>& z) {
  double m = z[0];
  for (double v : z) m = std::max(m, v);
  double s = 0;
  for (double v : z) s += std::exp(v - m);
  std::vector<double> out;
  for (double v : z) out.push_back(v - m - std::log(s));
  return out;
}

std::vector<double> logs(const std::vector<double>& p) {
  std::vector<double> out;
  for (double v : p) out.push_back(std::log(v));
  return out;
}

// The largest difference between two sets of log-probabilities (one row per text).
double largest_difference(const std::vector<std::vector<double>>& a, const std::vector<std::vector<double>>& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t k = 0; k < a[i].size(); ++k) d = std::max(d, std::abs(a[i][k] - b[i][k]));
  return d;
}

}  // namespace

class RealEndToEnd : public ::testing::TestWithParam<const char*> {};

TEST_P(RealEndToEnd, MiniLmTrainedEvaluatedExportedAndServedAnswersAlikeEverywhere) {
  const std::string strategy = GetParam(), minilm = source("assets/models/all-MiniLM-L6-v2"), python = source("assets/refenv/bin/python");
  KOTSU_REQUIRE_PATH(minilm + "/.complete");
  KOTSU_REQUIRE_PATH(python);
  KOTSU_REQUIRE_PATH(test::shared_dir() + "/data/text/sst2/train.tsv");
  const std::string dir = test::temp_dir("e2e-" + strategy), run = dir + "/run", cli = KOTSU_CLI;
  sst2_rows("train", 0, 240, dir + "/train.tsv");
  sst2_rows("dev", 0, 64, dir + "/val.tsv");
  const std::vector<std::string> texts = sst2_rows("dev", 64, 48, dir + "/test.tsv");
  int st = 0;
  std::string out = test::run_command(cli + " train --model " + minilm + " --data " + dir + "/train.tsv --val-data " + dir +
                                          "/val.tsv --text-col sentence --strategy " + strategy +
                                          // LoRA keeps Hugging Face's classifier layout (the [CLS] pooler) so that peft's own
                                          // SequenceClassification model can load the adapter; the others pool as the
                                          // checkpoint declares (sentence-transformers' mean)
                                          (strategy == "lora" ? " --pooling cls" : "") +
                                          " --epochs 2 --batch-size 16 --seed 3 --threads 2 --quiet --out " + run,
                                      &st);
  ASSERT_EQ(st, 0) << out;
  out = test::run_command(cli + " eval --run " + run + " --data " + dir + "/test.tsv --report " + dir + "/eval.json --predictions " + dir +
                              "/predictions.jsonl",
                          &st);
  ASSERT_EQ(st, 0) << out;
  out = test::run_command(cli + " export --model " + run + " --onnx " + dir + "/model.onnx", &st);
  ASSERT_EQ(st, 0) << out;
  if (strategy == "lora") {
    out = test::run_command(cli + " export --model " + run + " --merged --out " + dir + "/merged", &st);
    ASSERT_EQ(st, 0) << out;
    ASSERT_FALSE(std::filesystem::exists(dir + "/merged/adapter_config.json")) << "a merged export is a plain model";
  }

  // the libraries' answers
  std::ofstream(dir + "/texts.json") << json(texts).dump();
  const std::string oracle = "(HF_HUB_OFFLINE=1 " + python + " " + source("tests/oracles/classify.py") + " " + run + " " + dir +
                             "/texts.json --onnx " + dir + "/model.onnx" + (strategy == "lora" ? " --peft-base " + minilm + " --merged " + dir + "/merged" : "") +
                             " 2>" + dir + "/oracle.err)";  // its warnings kept apart from the JSON
  out = test::run_command(oracle, &st);
  ASSERT_EQ(st, 0) << out << test::run_command("cat " + dir + "/oracle.err", &st);
  const json lib = json::parse(out);
  const auto labels = lib["labels"].get<std::vector<std::string>>();
  ASSERT_EQ(labels.size(), 2u);
  std::vector<std::vector<double>> hf;
  double largest_logit = 1;
  for (const auto& z : lib["transformers"]) {
    hf.push_back(log_softmax(z.get<std::vector<double>>()));
    for (double v : z.get<std::vector<double>>()) largest_logit = std::max(largest_logit, std::abs(v));
  }
  ASSERT_EQ(hf.size(), texts.size());
  // The float32 tolerance (1e-4 of the largest logit, which test_real_models measures at ~5e-7 for this
  // model) on each logit moves a log-probability by at most twice that; probabilities printed as float32
  // add a relative 6e-8.
  const double tol = 2 * 1e-4 * largest_logit + 1e-6;

  // kotsu predict (the CLI, texts on stdin)
  {
    std::ofstream f(dir + "/texts.txt");
    for (const auto& t : texts) f << t << "\n";
  }
  out = test::run_command(cli + " predict --run " + run + " --json < " + dir + "/texts.txt", &st);
  ASSERT_EQ(st, 0) << out;
  std::vector<std::vector<double>> predicted;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    const json j = json::parse(line);
    std::vector<double> p;
    for (const auto& l : labels) p.push_back(j["probabilities"][l]);
    predicted.push_back(logs(p));
  }
  ASSERT_EQ(predicted.size(), texts.size());

  // kotsu serve (the CLI, kotsu's /v1 protocol)
  test::ServeProcess serve({"m=" + run, "--threads", "2"});
  ASSERT_GT(serve.port, 0) << serve.output;
  httplib::Client c("127.0.0.1", serve.port);
  c.set_read_timeout(60, 0);
  const auto res = c.Post("/v1/models/m:predict", json{{"inputs", texts}}.dump(), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  std::vector<std::vector<double>> served;
  const json answer = json::parse(res->body);
  for (const auto& p : answer["predictions"]) {
    std::vector<double> probs;
    for (const auto& l : labels) probs.push_back(p["probabilities"][l]);
    served.push_back(logs(probs));
  }
  ASSERT_EQ(served.size(), texts.size());
  EXPECT_EQ(serve.stop(), 0);

  std::vector<std::vector<double>> onnx;
  for (const auto& z : lib["onnxruntime"]) onnx.push_back(log_softmax(z.get<std::vector<double>>()));
  std::printf("%s: largest log-probability difference from transformers: kotsu predict %.2g, kotsu serve %.2g, onnxruntime %.2g (tolerance %.2g)\n",
              strategy.c_str(), largest_difference(predicted, hf), largest_difference(served, hf), largest_difference(onnx, hf), tol);
  EXPECT_LT(largest_difference(predicted, hf), tol);
  EXPECT_LT(largest_difference(served, hf), tol);
  EXPECT_LT(largest_difference(onnx, hf), tol);
  if (strategy == "lora") {  // the adapter through peft itself, and kotsu's merged export equals peft's merge
    std::vector<std::vector<double>> peft, peft_merged, merged;
    for (const auto& z : lib["peft"]) peft.push_back(log_softmax(z.get<std::vector<double>>()));
    for (const auto& z : lib["peft_merged"]) peft_merged.push_back(log_softmax(z.get<std::vector<double>>()));
    for (const auto& z : lib["merged"]) merged.push_back(log_softmax(z.get<std::vector<double>>()));
    ASSERT_EQ(merged.size(), texts.size());
    std::printf("lora: peft adapter %.2g, kotsu's merged export (transformers) vs peft's merge_and_unload %.2g\n",
                largest_difference(peft, hf), largest_difference(merged, peft_merged));
    EXPECT_LT(largest_difference(peft, hf), tol);
    EXPECT_LT(largest_difference(merged, peft_merged), tol);
    EXPECT_LT(largest_difference(predicted, merged), tol);
  }

  // kotsu eval's predictions and accuracy are transformers' (where its two logits are not within the tolerance)
  std::ifstream pf(dir + "/predictions.jsonl");
  size_t i = 0, correct = 0, decided = 0;
  for (std::string line; std::getline(pf, line); ++i) {
    ASSERT_LT(i, texts.size());
    const json j = json::parse(line);
    const size_t best = hf[i][1] > hf[i][0] ? 1 : 0;
    correct += j["label"] == j["predicted"];
    if (std::abs(hf[i][1] - hf[i][0]) > 2 * tol) {
      ++decided;
      EXPECT_EQ(j["predicted"], labels[best]) << texts[i];
    }
  }
  EXPECT_EQ(i, texts.size());
  EXPECT_GT(decided, texts.size() / 2);
  const json report = json::parse(std::ifstream(dir + "/eval.json"));
  EXPECT_NEAR(report["accuracy"].get<double>(), static_cast<double>(correct) / static_cast<double>(texts.size()), 1e-12);
  std::printf("%s: test accuracy %.3f on %zu SST-2 sentences\n", strategy.c_str(), report["accuracy"].get<double>(), texts.size());
  EXPECT_GT(report["accuracy"].get<double>(), 0.6);  // chance is 0.5; MiniLM's features are far better
}

INSTANTIATE_TEST_SUITE_P(Strategies, RealEndToEnd, ::testing::Values("head", "partial", "full", "lora", "contrastive"),
                         [](const ::testing::TestParamInfo<const char*>& i) { return std::string(i.param); });
