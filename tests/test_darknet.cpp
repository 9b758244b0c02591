// Darknet-Tiny (ml5's TF.js layers model in ../shared/models/darknet-tiny) imported by `kotsu import tfjs`:
// it classifies the two test pictures and matches a numpy reading of the Keras graph
// (tests/fixtures/darknet_reference.py).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "kotsu/core/error.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/io/json_file.hpp"
#include "kotsu/models/darknet.hpp"
#include "kotsu/models/image_model.hpp"
#include "kotsu/models/import_tfjs.hpp"
#include "test_pictures.hpp"
#include "test_util.hpp"

namespace kotsu {
namespace {

namespace fs = std::filesystem;

std::string darknet_dir() { return test::shared_dir() + "/models/darknet-tiny"; }
std::string coral(const std::string& f) { return test::shared_dir() + "/models/coral-mobilenet/" + f; }


TEST(Darknet, ImportedTinyClassifiesTheTestPictures) {
  if (!fs::exists(darknet_dir() + "/model.json") || !fs::exists(coral("bird.rgb")))
    KOTSU_SKIP() << "../shared/models/darknet-tiny or coral-mobilenet absent";
  // Darknet's class order (ILSVRC2012 devkit order, not TF-slim's), from npm ml5 (scripts/setup)
  const std::string labels = test::fixture("darknet_labels.txt");
  if (!fs::exists(labels)) KOTSU_SKIP() << "npm ml5 absent: no Darknet class names (" << labels << ")";
  const std::string out = test::temp_dir("darknet") + "/m";
  ImportReport rep = import_tfjs(darknet_dir(), out, false, labels);
  EXPECT_EQ(rep.architecture, "darknet");
  ImageModel m = load_image_model(out);
  EXPECT_EQ(m.config.conv_layers.size(), 15u);
  EXPECT_EQ(m.config.labels.size(), 1000u);
  EXPECT_EQ(m.config.labels[0], "kit fox");
  EXPECT_DOUBLE_EQ(m.preprocess.std[0], 1.0);  // Keras' x / 255
  EXPECT_DOUBLE_EQ(m.preprocess.mean[0], 0.0);
  EXPECT_EQ(m.model->feature_size(), 128);
  m.model->eval();
  torch::NoGradGuard ng;
  const std::string ref_path = test::fixture("darknet_reference.json");
  nlohmann::json ref = fs::exists(ref_path) ? read_json(ref_path) : nlohmann::json();
  for (auto [img, want] : {std::pair<std::string, std::string>{"bird.rgb", "chickadee"}, {"sunflower.rgb", "daisy"}}) {
    auto logits = m.model->logits(test::load_rgb224(coral(img), m.preprocess))[0];
    auto p = torch::softmax(logits, 0);
    const int64_t top = p.argmax().item<int64_t>();
    EXPECT_EQ(m.config.labels[top], want) << img << " p=" << p[top].item<float>();
    if (ref.is_object()) {  // the numpy reading of the Keras graph
      auto r = torch::tensor(ref[img].get<std::vector<float>>());
      EXPECT_LT((logits - r).abs().max().item<float>(), 1e-3f) << img;
    }
  }
  ASSERT_TRUE(ref.is_object()) << "fixture missing: " << ref_path;
}

TEST(Darknet, ALabelsFileWithBackgroundFitsA1000ClassModel) {
  if (!fs::exists(darknet_dir() + "/model.json")) KOTSU_SKIP() << "../shared/models/darknet-tiny absent";
  const std::string dir = test::temp_dir("darknet-bg");
  std::string text = "background\n";
  for (int i = 0; i < 1000; ++i) text += "class " + std::to_string(i) + "\n";
  write_atomic(dir + "/labels.txt", text);
  import_tfjs(darknet_dir(), dir + "/m", false, dir + "/labels.txt");
  ImageModel m = load_image_model(dir + "/m");
  ASSERT_EQ(m.config.labels.size(), 1000u);
  EXPECT_EQ(m.config.labels[0], "class 0");
}

TEST(Darknet, RefusesOtherKerasLayouts) {
  if (!fs::exists(darknet_dir() + "/model.json")) KOTSU_SKIP() << "../shared/models/darknet-tiny absent";
  TfjsModel m = read_tfjs(darknet_dir() + "/model.json");
  auto& layers = m.topology["model_config"]["config"]["layers"];
  layers[3]["class_name"] = "ReLU";  // conv, batch norm, then not a LeakyReLU
  try {
    darknet_from_tfjs(m, {});
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("LeakyReLU"), std::string::npos) << e.what();
  }
  EXPECT_THROW(darknet_from_tfjs(read_tfjs(darknet_dir() + "/model.json"), {"a", "b"}), Error);  // 2 labels, 1000 classes
}

}  // namespace
}  // namespace kotsu
