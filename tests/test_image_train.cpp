// Fine-tuning image classifiers through the one trainer (train/image_task): resumable and deterministic
// with augmentation, batch-norm statistics frozen unless asked, discriminative learning rates, and real
// transfer with the imported ImageNet MobileNet V2 on a CIFAR-10 subset (../shared).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "kotsu/core/error.hpp"
#include "kotsu/infer/evaluate_image.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/io/safetensors.hpp"
#include "kotsu/models/image_model.hpp"
#include "kotsu/models/import_tflite.hpp"
#include "kotsu/train/trainer.hpp"
#include "test_models.hpp"
#include "test_util.hpp"

namespace kotsu {
namespace {

namespace fs = std::filesystem;

TrainHooks quiet() {
  TrainHooks h;
  h.quiet = true;
  return h;
}

TrainOptions tiny_options(const std::string& tag) {
  TrainOptions o;
  o.model = test::tiny_mobilenet(tag);
  o.data = test::fixture("image_task/folder");
  o.val_data = o.data;
  o.out = test::temp_dir(tag) + "/run";
  o.strategy = "full";
  o.lr = 3e-3;
  o.batch_size = 4;
  o.epochs = 3;
  o.patience = 0;
  o.threads = 2;
  o.head_first = false;
  return o;
}

TEST(ImageTrain, ResumeAfterStopEqualsUninterruptedRunWithAugmentation) {
  TrainOptions a = tiny_options("img-resume-a");
  a.train_bn_stats = true;
  a.lr_decay = 0.7;
  train_classifier(a, quiet());
  TrainOptions b = a;
  b.out = test::temp_dir("img-resume-b") + "/run";
  TrainHooks stop = quiet();
  stop.stop_after_epoch = 1;
  EXPECT_EQ(train_classifier(b, stop).epochs_run, 1);
  EXPECT_EQ(resume_classifier(b.out, quiet()).epochs_run, 3);
  auto wa = load_safetensors(a.out + "/checkpoint-3/model.safetensors");
  auto wb = load_safetensors(b.out + "/checkpoint-3/model.safetensors");
  ASSERT_EQ(wa.size(), wb.size());
  for (auto& [name, t] : wa) EXPECT_TRUE(torch::equal(t, wb.at(name))) << name;
  auto run = nlohmann::json::parse(read_file(a.out + "/run.json"));
  EXPECT_EQ(run["task"], "image-classification");
  EXPECT_EQ(run["labels"], (std::vector<std::string>{"cat", "dog", "fox"}));
  // the run directory is a model directory that eval and predict load
  ImageModel m = load_image_model(a.out);
  EXPECT_EQ(m.config.labels.size(), 3u);
  const std::string pic = test::fixture("image_task/folder/dog/0.png");
  const std::string cmd = std::string(KOTSU_CLI) + " predict --run " + a.out + " --top 2 " + pic + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  EXPECT_EQ(pclose(p), 0) << out;
  EXPECT_EQ(out.rfind(pic + "\t", 0), 0u) << out;          // path, then the two best classes
  EXPECT_EQ(std::count(out.begin(), out.end(), '='), 2) << out;
  const std::string eval = std::string(KOTSU_CLI) + " eval --run " + a.out + " --data " + test::fixture("image_task/images.csv") + " 2>&1";
  p = popen(eval.c_str(), "r");
  out.clear();
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  EXPECT_EQ(pclose(p), 0) << out;
  EXPECT_NE(out.find("(12 examples)"), std::string::npos) << out;
}

TEST(ImageTrain, BatchNormStatisticsStayFrozenUnlessAsked) {
  for (bool train_stats : {false, true}) {
    TrainOptions o = tiny_options(train_stats ? "img-bn-train" : "img-bn-frozen");
    o.epochs = 1;
    o.train_bn_stats = train_stats;
    train_classifier(o, quiet());
    auto before = load_safetensors(o.model + "/model.safetensors");
    auto after = load_safetensors(o.out + "/model.safetensors");
    const std::string k = "mobilenet_v1.layer.3.normalization.running_mean";
    EXPECT_EQ(torch::equal(before.at(k), after.at(k)), !train_stats) << "train_bn_stats " << train_stats;
    // the weights train either way
    const std::string w = "mobilenet_v1.layer.3.convolution.weight";
    EXPECT_FALSE(torch::equal(before.at(w), after.at(w)));
  }
}

TEST(ImageTrain, FromScratchTrainsBatchNormStatistics) {
  TrainOptions o = tiny_options("img-bn-scratch");
  o.epochs = 1;
  o.init = "random";  // nothing pre-trained to keep: batch statistics without --train-bn-stats
  train_classifier(o, quiet());
  auto before = load_safetensors(o.model + "/model.safetensors");
  auto after = load_safetensors(o.out + "/model.safetensors");
  const std::string k = "mobilenet_v1.layer.3.normalization.running_mean";
  EXPECT_FALSE(torch::equal(before.at(k), after.at(k)));
}

TEST(ImageTrain, ImageSizeTrainsAndEvaluatesAtThatSize) {
  TrainOptions o = tiny_options("img-size");
  o.epochs = 1;
  o.image_size = 24;  // the model's own: crop 32 after a resize to 32
  train_classifier(o, quiet());
  ImageModel m = load_image_model(o.out);
  EXPECT_EQ(m.preprocess.crop_height, 24);
  EXPECT_EQ(m.preprocess.crop_width, 24);
  EXPECT_EQ(m.preprocess.resize_shortest, 24);  // keeps the model's resize/crop ratio (1)
  EXPECT_EQ(m.config.image_size, 24);
  auto run = nlohmann::json::parse(read_file(o.out + "/run.json"));
  EXPECT_EQ(run["options"]["image_size"], 24);
  EvalResult r = evaluate_image_run(o.out, test::fixture("image_task/images.csv"));
  EXPECT_EQ(r.metrics.n, 12);
  // a text model refuses the option, naming it
  TrainOptions t;
  t.model = test::fixture("tiny_bert_init");
  t.data = test::fixture("task/train.csv");
  t.out = test::temp_dir("img-size-text") + "/run";
  t.image_size = 24;
  try {
    train_classifier(t, quiet());
    FAIL() << "a text model trained with image_size";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("image_size"), std::string::npos) << e.what();
  }
}

TEST(ImageTrain, PartialTrainsOnlyTheTopBlocksAndTheHead) {
  TrainOptions o = tiny_options("img-partial");
  o.strategy = "partial";
  o.unfreeze = 2;
  o.epochs = 1;
  train_classifier(o, quiet());
  auto before = load_safetensors(o.model + "/model.safetensors");
  auto after = load_safetensors(o.out + "/model.safetensors");
  EXPECT_TRUE(torch::equal(before.at("mobilenet_v1.conv_stem.convolution.weight"), after.at("mobilenet_v1.conv_stem.convolution.weight")));
  EXPECT_TRUE(torch::equal(before.at("mobilenet_v1.layer.21.convolution.weight"), after.at("mobilenet_v1.layer.21.convolution.weight")));
  EXPECT_FALSE(torch::equal(before.at("mobilenet_v1.layer.25.convolution.weight"), after.at("mobilenet_v1.layer.25.convolution.weight")));
  EXPECT_TRUE(after.count("classifier.weight"));
}

TEST(ImageTrain, ImageNetMobileNetHeadTransfersToCifar) {
  const std::string shared = test::shared_dir();
  const std::string tfl = shared + "/models/coral-mobilenet/mobilenet_v2_1.0_224_quant.tflite";
  const std::string cifar = shared + "/data/image/cifar10";
  if (!fs::exists(tfl) || !fs::exists(cifar)) KOTSU_SKIP() << "../shared MobileNets or CIFAR-10 subset absent";
  const std::string dir = test::temp_dir("cifar-head");
  import_tflite(tfl, dir + "/mnv2");
  // 20 training and 20 test pictures per class, as links in ImageFolder layout
  for (const std::string split : {"train", "test"})
    for (const auto& c : fs::directory_iterator(cifar + "/" + split)) {
      std::vector<fs::path> files;
      for (const auto& f : fs::directory_iterator(c.path())) files.push_back(f.path());
      std::sort(files.begin(), files.end());
      fs::create_directories(dir + "/" + split + "/" + c.path().filename().string());
      for (size_t i = 0; i < 20; ++i)
        fs::create_symlink(files[i], dir + "/" + split + "/" + c.path().filename().string() + "/" + files[i].filename().string());
    }
  TrainOptions o;
  o.model = dir + "/mnv2";
  o.data = dir + "/train";
  o.out = dir + "/run";
  o.strategy = "head";
  o.threads = 2;
  train_classifier(o, quiet());
  EvalResult r = evaluate_image_run(o.out, dir + "/test");
  // measured 0.57 on the whole 1,000-picture test set (chance: 0.10)
  EXPECT_GE(r.metrics.accuracy, 0.45) << r.report.dump();
}

}  // namespace
}  // namespace kotsu
