// ONNX export (export/onnx_*): every exported family, run in ONNX Runtime (npm onnxruntime-node through
// tests/fixtures/onnx_run.js), gives kotsu's own outputs within 1e-4 on inputs with padding, at two
// batch and sequence (or picture) sizes (the dynamic axes); the files pass python3-onnx's full checker.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "kotsu/core/error.hpp"
#include "kotsu/export/onnx_export.hpp"
#include "kotsu/models/causal_lm.hpp"
#include "kotsu/models/image_model.hpp"
#include "kotsu/models/lora.hpp"
#include "kotsu/models/text_model.hpp"
#include "test_util.hpp"

namespace kotsu {
namespace {

namespace fs = std::filesystem;

std::string ort_modules() { return std::string(KOTSU_SOURCE_DIR) + "/assets/npm/onnxruntime/node_modules"; }

bool have_ort() {
  int status = 0;
  test::run_command("node --version", &status);
  return status == 0 && fs::exists(ort_modules() + "/onnxruntime-node/package.json");
}

#define SKIP_WITHOUT_ORT()                                                                              \
  if (!have_ort()) KOTSU_SKIP() << "node or npm onnxruntime-node (scripts/setup installs it into "     \
                                   "assets/npm/onnxruntime) is absent: the ONNX Runtime oracle is skipped"

using Feeds = std::vector<std::pair<std::string, torch::Tensor>>;

// The model's outputs in ONNX Runtime for `feeds`.
std::map<std::string, torch::Tensor> run_ort(const std::string& model, const Feeds& feeds) {
  const std::string dir = test::temp_dir("ort");
  nlohmann::json in = nlohmann::json::object();
  for (const auto& [name, t] : feeds) {
    const bool ints = !t.is_floating_point();
    torch::Tensor c = t.contiguous().to(ints ? torch::kInt64 : torch::kFloat64);
    nlohmann::json data = nlohmann::json::array();
    if (ints) for (int64_t i = 0; i < c.numel(); ++i) data.push_back(c.data_ptr<int64_t>()[i]);
    else for (int64_t i = 0; i < c.numel(); ++i) data.push_back(c.data_ptr<double>()[i]);
    in[name] = {{"type", ints ? "int64" : "float32"}, {"dims", t.sizes().vec()}, {"data", data}};
  }
  std::ofstream(dir + "/in.json") << in.dump();
  int status = 0;
  const std::string log = test::run_command("node " + std::string(KOTSU_SOURCE_DIR) + "/tests/fixtures/onnx_run.js " + ort_modules() +
                                                " " + model + " " + dir + "/in.json " + dir + "/out.json", &status);
  EXPECT_EQ(status, 0) << log;
  std::map<std::string, torch::Tensor> out;
  if (status != 0) return out;
  std::ifstream f(dir + "/out.json");
  const nlohmann::json j = nlohmann::json::parse(f);
  for (const auto& [name, v] : j.items()) {
    std::vector<double> data = v["data"].get<std::vector<double>>();
    out[name] = torch::tensor(data, torch::kFloat64).view(v["dims"].get<std::vector<int64_t>>()).to(torch::kFloat32);
  }
  return out;
}

// python3-onnx's checker with full_check (strict shape inference), as any ONNX tool would load the file.
void expect_python_checker_passes(const std::string& path) {
  int status = 0;
  const std::string log = test::run_command(
      "/usr/bin/python3 -c \"import onnx, sys; m = onnx.load(sys.argv[1]); onnx.checker.check_model(m, full_check=True); "
      "print(m.opset_import[0].version)\" " + path, &status);
  EXPECT_EQ(status, 0) << log;
  EXPECT_NE(log.find(std::to_string(kOnnxOpset)), std::string::npos) << log;
}

void expect_close(const torch::Tensor& got, const torch::Tensor& want, const std::string& what) {
  ASSERT_TRUE(got.defined()) << what << ": ONNX Runtime gave no such output";
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  const double diff = (got.to(torch::kFloat64) - want.to(torch::kFloat64)).abs().max().item<double>();
  // ONNX Runtime and kotsu sum in different orders: the test models (hidden <= 64, feed-forward <= 128,
  // two layers or a small CNN: about 16 chained sums of up to 128 products) at the outputs' magnitude
  const double magnitude = std::max(1.0, want.abs().max().item<double>());
  EXPECT_LT(diff, test::float32_bound(magnitude, 128, 16)) << what << " (outputs of magnitude " << magnitude << ")";
}

// Ids in [3, vocab) (never a special or padding id) with the last `pad[i]` positions of row i padding.
TextBatch text_batch(int64_t B, int64_t T, int64_t vocab, int64_t pad_id, const std::vector<int64_t>& pad, int64_t types, uint64_t seed) {
  torch::manual_seed(seed);
  TextBatch b;
  b.input_ids = torch::randint(3, vocab, {B, T}, torch::kLong);
  b.attention_mask = torch::ones({B, T}, torch::kLong);
  for (int64_t i = 0; i < B; ++i)
    if (pad[i] > 0) {
      b.input_ids[i].narrow(0, T - pad[i], pad[i]).fill_(pad_id);
      b.attention_mask[i].narrow(0, T - pad[i], pad[i]).fill_(0);
    }
  if (types > 0) b.token_type_ids = torch::randint(0, types, {B, T}, torch::kLong) * b.attention_mask;
  return b;
}

// A copy of fixture `name` whose config pools features by the mean (kotsu_pooling, what --strategy
// contrastive trains).
std::string mean_pooled_copy(const std::string& name, const std::string& dir) {
  const std::string to = dir + "/" + name + "-mean";
  fs::create_directories(to);
  for (const auto& e : fs::directory_iterator(test::fixture(name))) fs::copy(e.path(), to / e.path().filename(), fs::copy_options::overwrite_existing);
  nlohmann::json c = nlohmann::json::parse(std::ifstream(to + "/config.json"));
  c["kotsu_pooling"] = "mean";
  std::ofstream(to + "/config.json") << c.dump(2);
  return to;
}

TEST(Onnx, TextClassifiersMatchOnnxRuntime) {
  SKIP_WITHOUT_ORT();
  const std::string dir = test::temp_dir("onnx-text");
  for (const std::string name : {"tiny_bert", "tiny_roberta", "tiny_distilbert", "tiny_bert-mean", "tiny_distilbert-mean"}) {
    SCOPED_TRACE(name);
    const bool mean = name.size() > 5 && name.compare(name.size() - 5, 5, "-mean") == 0;
    const std::string src = mean ? mean_pooled_copy(name.substr(0, name.size() - 5), dir) : test::fixture(name);
    const std::string out = dir + "/" + name + ".onnx";
    const OnnxExportReport r = export_onnx(src, out, false);
    EXPECT_GT(r.parameters, 0);
    expect_python_checker_passes(out);
    TextModel m = load_text_model(src);
    EXPECT_EQ(m.config.pooling, mean ? "mean" : "cls");
    m.model->eval();
    const bool types = m.config.model_type != "distilbert" && m.config.type_vocab_size > 0;
    int run = 0;
    for (auto [B, T] : {std::pair<int64_t, int64_t>{3, 7}, {1, 12}}) {
      const TextBatch b = text_batch(B, T, m.config.vocab_size, m.config.pad_token_id, B == 3 ? std::vector<int64_t>{0, 2, 5} : std::vector<int64_t>{0},
                                     types ? m.config.type_vocab_size : 0, 11 + run++);
      torch::Tensor want;
      {
        torch::NoGradGuard ng;
        want = m.model->logits(b);
      }
      Feeds feeds = {{"input_ids", b.input_ids}, {"attention_mask", b.attention_mask}};
      if (types) feeds.push_back({"token_type_ids", b.token_type_ids});
      auto got = run_ort(out, feeds);
      expect_close(got["logits"], want, name + " logits B=" + std::to_string(B));
      expect_close(got["probabilities"], torch::softmax(want, -1), name + " probabilities");
    }
  }
}

// Random weights of a realistic scale (unit-variance activations) and batch-norm statistics that are
// not the identity, so that a wrong or missing operator shows in the outputs.
// timm's batch norm scales: "bn1.weight", "blocks.0.0.bn2.weight"
bool is_bn_weight(const std::string& name) {
  const size_t at = name.rfind(".bn");
  const size_t start = at == std::string::npos ? (name.rfind("bn", 0) == 0 ? 0 : std::string::npos) : at + 1;
  return start != std::string::npos && name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0 &&
         name.find('.', start) == name.size() - 7;
}

void randomize(torch::nn::Module& m, uint64_t seed) {
  torch::manual_seed(seed);
  torch::NoGradGuard ng;
  for (auto& p : m.named_parameters(true)) {
    torch::Tensor t = p.value();
    if (t.dim() > 1) t.copy_(torch::randn_like(t) / std::sqrt(static_cast<double>(t[0].numel())));
    else if (p.key().find("normalization.weight") != std::string::npos || is_bn_weight(p.key())) t.copy_(1 + 0.2 * torch::randn_like(t));
    else t.copy_(0.1 * torch::randn_like(t));
  }
  for (auto& b : m.named_buffers(true)) {
    if (b.key().find("running_mean") != std::string::npos) b.value().copy_(0.1 * torch::randn_like(b.value()));
    if (b.key().find("running_var") != std::string::npos) b.value().copy_(0.5 + torch::rand_like(b.value()));
  }
}

TEST(Onnx, ImageClassifiersMatchOnnxRuntime) {
  SKIP_WITHOUT_ORT();
  std::vector<ImageConfig> configs;
  ImageConfig basic;
  basic.model_type = "resnet";
  basic.embedding_size = 8, basic.hidden_sizes = {8, 16}, basic.depths = {1, 2}, basic.layer_type = "basic";
  configs.push_back(basic);
  ImageConfig bottleneck = basic;
  bottleneck.hidden_sizes = {16, 32}, bottleneck.depths = {2, 1}, bottleneck.layer_type = "bottleneck";
  bottleneck.downsample_in_first_stage = true;
  configs.push_back(bottleneck);
  ImageConfig v2;
  v2.model_type = "mobilenet_v2", v2.depth_multiplier = 0.35;  // TensorFlow "SAME" padding, ReLU6
  configs.push_back(v2);
  ImageConfig v1;
  v1.model_type = "mobilenet_v1", v1.depth_multiplier = 0.25, v1.tf_padding = false, v1.hidden_act = "relu";
  configs.push_back(v1);
  ImageConfig dark;
  dark.model_type = "darknet", dark.conv_layers = {{8, 3, 1}, {16, 3, 1}, {16, 1, 0}}, dark.leaky_slope = 0.1;
  configs.push_back(dark);
  ImageConfig lite;  // EfficientNet-Lite (TensorFlow "SAME" padding, 5 x 5 depthwise kernels, residual blocks)
  lite.model_type = "efficientnet_lite", lite.width_coefficient = 0.25;
  configs.push_back(lite);

  const std::string dir = test::temp_dir("onnx-image");
  uint64_t seed = 3;
  for (ImageConfig c : configs) {
    SCOPED_TRACE(c.model_type + " " + c.layer_type);
    c.labels = {"ok", "scratch", "dent"};
    ImageModel m;
    m.config = c;
    m.model = make_image_classifier(c, 3);
    randomize(*m.model, seed++);
    m.model->eval();
    const std::string model_dir = dir + "/" + std::to_string(seed);
    save_image_model(m, model_dir);
    const std::string out = model_dir + ".onnx";
    export_onnx(model_dir, out, false);
    expect_python_checker_passes(out);
    for (auto [B, H, W] : {std::tuple<int64_t, int64_t, int64_t>{2, 33, 29}, {1, 32, 32}}) {
      torch::manual_seed(seed * 10 + H);
      const torch::Tensor x = torch::randn({B, 3, H, W});
      torch::Tensor want;
      {
        torch::NoGradGuard ng;
        want = m.model->logits(x);
      }
      auto got = run_ort(out, {{"pixel_values", x}});
      expect_close(got["logits"], want, c.model_type + " logits " + std::to_string(H) + "x" + std::to_string(W));
      expect_close(got["probabilities"], torch::softmax(want, -1), c.model_type + " probabilities");
    }
  }
}

TEST(Onnx, Gpt2AndItsLoraRunMatchOnnxRuntime) {
  SKIP_WITHOUT_ORT();
  const std::string dir = test::temp_dir("onnx-gpt2");
  for (const std::string name : {"tiny_gpt2", "tiny_gpt2_lora"}) {
    SCOPED_TRACE(name);
    const std::string out = dir + "/" + name + ".onnx";
    export_onnx(test::fixture(name), out, false);
    expect_python_checker_passes(out);
    CausalLmModel m = load_causal_lm_or_adapter(test::fixture(name));  // the adapter unmerged: the reference
    m.model->eval();
    for (auto [B, T] : {std::pair<int64_t, int64_t>{2, 6}, {1, 1}}) {
      torch::manual_seed(B * 100 + T);
      const torch::Tensor ids = torch::randint(0, m.config.vocab_size, {B, T}, torch::kLong);
      torch::Tensor mask = torch::ones({B, T}, torch::kLong);
      if (B == 2) mask[1].narrow(0, 0, 2).fill_(0);  // left padding
      torch::Tensor want;
      {
        torch::NoGradGuard ng;
        want = m.model->logits(ids, nullptr, mask);
      }
      auto got = run_ort(out, {{"input_ids", ids}, {"attention_mask", mask}});
      expect_close(got["logits"], want, name + " logits B=" + std::to_string(B) + " T=" + std::to_string(T));
    }
  }
}

TEST(Onnx, ExportRefusesWhatItCannotWrite) {
  const std::string dir = test::temp_dir("onnx-refuse");
  auto expect_error = [](const std::function<void()>& f, const std::string& needle) {
    try {
      f();
      ADD_FAILURE() << "no error; expected one mentioning " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  // an existing file is kept unless forced
  const std::string keep = dir + "/keep.onnx";
  std::ofstream(keep) << "precious";
  expect_error([&] { export_onnx(test::fixture("tiny_bert"), keep, false); }, "already exists");
  std::ifstream k(keep);
  std::string content((std::istreambuf_iterator<char>(k)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "precious");
  // a model without labels, an architecture without an exporter, no model at all: nothing written
  expect_error([&] { export_onnx(test::fixture("tiny_bert_init"), dir + "/a.onnx", false); }, "no labels");
  expect_error([&] { export_onnx(test::fixture("tiny_llama"), dir + "/b.onnx", false); }, "no ONNX export");
  expect_error([&] { export_onnx(dir + "/missing", dir + "/c.onnx", false); }, "missing");
  for (const char* f : {"a.onnx", "b.onnx", "c.onnx"}) EXPECT_FALSE(fs::exists(dir + "/" + f)) << f;
  // forced: replaced by a valid model
  export_onnx(test::fixture("tiny_bert"), keep, true);
  EXPECT_GT(fs::file_size(keep), 1000u);
}

TEST(Onnx, CliExportsAndSaysWhatItWrote) {
  const std::string dir = test::temp_dir("onnx-cli");
  int status = 0;
  std::string out = test::run_command(std::string(KOTSU_CLI) + " export " + test::fixture("tiny_distilbert") + " --onnx " + dir + "/m.onnx", &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("exported distilbert"), std::string::npos) << out;
  EXPECT_NE(out.find("opset 17"), std::string::npos) << out;
  EXPECT_TRUE(fs::exists(dir + "/m.onnx"));
  out = test::run_command(std::string(KOTSU_CLI) + " export " + test::fixture("tiny_distilbert"), &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(out.find("--onnx FILE, --merged --out DIR or --int8"), std::string::npos) << out;
}

}  // namespace
}  // namespace kotsu
