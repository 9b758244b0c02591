// .npy files (io/npy, checked by numpy itself), `kotsu embed` features (infer/embed) equal to what the
// models compute, and the in-order batch prefetcher of the image task (data/prefetcher).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include "kotsu/core/error.hpp"
#include "kotsu/data/image_dataset.hpp"
#include "kotsu/data/prefetcher.hpp"
#include "kotsu/infer/embed.hpp"
#include "kotsu/infer/predict.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/io/npy.hpp"
#include "kotsu/models/image_model.hpp"
#include "kotsu/models/text_model.hpp"
#include "kotsu/vision/transforms.hpp"
#include "test_models.hpp"
#include "test_util.hpp"

namespace kotsu {
namespace {

TEST(Npy, NumpyReadsWhatKotsuWritesAndBack) {
  const std::string dir = test::temp_dir("npy");
  auto x = torch::randn({5, 7}, torch::kFloat64);  // written as float32
  write_npy(dir + "/x.npy", x);
  auto back = read_npy(dir + "/x.npy");
  EXPECT_EQ(back.sizes(), (std::vector<int64_t>{5, 7}));
  EXPECT_TRUE(torch::equal(back, x.to(torch::kFloat32)));
  const std::string bytes = read_file(dir + "/x.npy");
  EXPECT_EQ((bytes.size() - 5 * 7 * 4) % 64, 0u);  // header padded to 64 bytes, as numpy writes it
  int status;
  const std::string out = test::run_command("/usr/bin/python3 -c \"import numpy as np; a = np.load('" + dir +
                                  "/x.npy'); np.save('" + dir + "/y.npy', a * 2); print(a.dtype, a.shape, repr(float(a[4, 6])))\"",
                              &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_EQ(out.substr(0, out.find(" (")), "float32") << out;
  EXPECT_NE(out.find("(5, 7)"), std::string::npos) << out;
  auto doubled = read_npy(dir + "/y.npy");  // numpy's own file
  EXPECT_TRUE(torch::equal(doubled, back * 2));
  write_npy(dir + "/v.npy", torch::arange(3, torch::kFloat32));
  EXPECT_EQ(read_npy(dir + "/v.npy").sizes(), (std::vector<int64_t>{3}));
}

TEST(Npy, RefusesOtherDtypesAndTruncatedFiles) {
  const std::string dir = test::temp_dir("npy-bad");
  write_npy(dir + "/x.npy", torch::ones({4, 4}));
  const std::string good = read_file(dir + "/x.npy");
  auto expect_refused = [&](const std::string& bytes, const std::string& field) {
    write_atomic(dir + "/bad.npy", bytes);
    try {
      read_npy(dir + "/bad.npy");
      ADD_FAILURE() << "accepted a bad file (" << field << ")";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("bad.npy"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
  };
  expect_refused(good.substr(0, good.size() - 3), "data");
  expect_refused("PK\x03\x04 not numpy", "magic");
  std::string f8 = good;
  f8.replace(f8.find("<f4"), 3, "<f8");
  expect_refused(f8, "descr");
  std::string fortran = good;
  fortran.replace(fortran.find("False"), 5, "True ");
  expect_refused(fortran, "fortran_order");
}

TEST(Embed, PictureFeaturesAreTheModelsPooledFeatures) {
  // a random MobileNet V1 without labels: embed needs none
  const std::string dir = test::tiny_mobilenet("embed-img", 36, 5);
  const std::string data = test::fixture("image_task/images.csv");
  Embedded e = embed_data(dir, data, TextColumns{}, 5, "cpu");
  ImageDataset d = load_image_dataset(data);
  ASSERT_EQ(e.features.size(0), static_cast<int64_t>(d.size()));
  ImageModel loaded = load_image_model(dir, {"a", "b"});
  ASSERT_EQ(e.features.size(1), loaded.model->feature_size());
  loaded.model->eval();
  torch::NoGradGuard ng;
  for (size_t i : {size_t(0), d.size() - 1}) {
    auto x = eval_transform(d.image(i), loaded.preprocess).unsqueeze(0);
    EXPECT_TRUE(torch::allclose(e.features[static_cast<int64_t>(i)], loaded.model->features(x)[0], 1e-5, 1e-6)) << i;
    EXPECT_EQ(e.names[i], d.name(i));
    EXPECT_EQ(e.labels[i], d.classes[static_cast<size_t>(d.targets[i])]);
  }
  // another input size changes the features (the network sees other pixels)
  Embedded small = embed_data(dir, data, TextColumns{}, 5, "cpu", false, 16);
  EXPECT_EQ(small.features.sizes(), e.features.sizes());
  const float scale = e.features.abs().max().item<float>();
  ASSERT_GT(scale, 0.f);
  EXPECT_GT((small.features - e.features).abs().max().item<float>(), 1e-3f * scale);
}

TEST(Embed, TextFeaturesAreWhatTheHeadStrategyCaches) {
  const std::string model = test::fixture("tiny_bert_init");
  const std::string data = test::fixture("task/test.tsv");
  Embedded e = embed_data(model, data, TextColumns{}, 4, "cpu");
  TextModel m = load_text_model(model, {"a", "b"});
  TextColumns cols;
  cols.label.clear();
  TextDataset d = load_text_dataset(data, cols);
  auto want = compute_features(*m.model, encode_texts(*m.tokenizer, d, 128), 16, torch::kCPU);
  EXPECT_TRUE(torch::allclose(e.features, want, 1e-5, 1e-6));
  EXPECT_EQ(e.names.front(), "line " + std::to_string(d.lines.front()));
}

TEST(Embed, CliWritesNpyAndRowsAndRefusesBadInput) {
  const std::string dir = test::temp_dir("embed-cli");
  int status;
  std::string out = test::run_command(std::string(KOTSU_CLI) + " embed --model " + test::fixture("tiny_bert_init") + " --data " +
                            test::fixture("task/test.tsv") + " --out " + dir + "/f.npy --rows " + dir + "/rows.jsonl",
                        &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(out.find("features to " + dir + "/f.npy"), std::string::npos) << out;
  auto f = read_npy(dir + "/f.npy");
  const std::string rows = read_file(dir + "/rows.jsonl");
  EXPECT_EQ(std::count(rows.begin(), rows.end(), '\n'), f.size(0));
  out = test::run_command(std::string(KOTSU_CLI) + " embed --model " + dir + "/missing --data x.csv --out " + dir + "/g.npy", &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(out.find("model directory not found"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(dir + "/g.npy"));
}

TEST(Prefetcher, HandsOutItemsInOrderNeverTooFarAhead) {
  std::atomic<size_t> taken{0};
  std::atomic<bool> too_far{false};
  Prefetcher<int> p(40, 3, 4, [&](size_t k) {
    if (k > taken + 4) too_far = true;  // depth 4 past the item in hand (taken counts after next() returns)
    std::this_thread::sleep_for(std::chrono::microseconds(200 * (k % 5)));  // out-of-order completion
    return static_cast<int>(k * k);
  });
  for (size_t k = 0; k < 40; ++k) {
    EXPECT_EQ(p.position(), k);
    EXPECT_EQ(p.next(), static_cast<int>(k * k));
    ++taken;
  }
  EXPECT_TRUE(p.done());
  EXPECT_FALSE(too_far);
}

TEST(Prefetcher, RethrowsAnItemsErrorWhenReachedAndStopsCleanly) {
  Prefetcher<int> p(10, 2, 3, [](size_t k) -> int {
    if (k == 2) throw Error("pic.png", "image", "truncated");
    return static_cast<int>(k);
  });
  EXPECT_EQ(p.next(), 0);
  EXPECT_EQ(p.next(), 1);
  EXPECT_THROW(p.next(), Error);
  EXPECT_EQ(p.next(), 3);
  // destroyed with items left: the workers stop without hanging
}

}  // namespace
}  // namespace kotsu
