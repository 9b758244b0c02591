// TFLite reading, MobileNet V1/V2 and `kotsu import tflite` on the real ImageNet MobileNets in
// ../shared/models/coral-mobilenet, checked against the integer reference interpreter
// (tests/fixtures/tflite_reference.py) and the expected classes of the two test pictures.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "kotsu/core/error.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/io/json_file.hpp"
#include "kotsu/io/tflite.hpp"
#include "kotsu/models/image_classifier.hpp"
#include "kotsu/models/image_model.hpp"
#include "kotsu/models/import_tflite.hpp"
#include "kotsu/models/mobilenet.hpp"
#include "test_pictures.hpp"
#include "test_util.hpp"

namespace kotsu {
namespace {

namespace fs = std::filesystem;

std::string coral(const std::string& f = "") { return test::shared_dir() + "/models/coral-mobilenet/" + f; }

#define SKIP_WITHOUT_CORAL()                                                                 \
  if (!fs::exists(coral("mobilenet_v2_1.0_224_quant.tflite")))                               \
  KOTSU_SKIP() << "../shared/models/coral-mobilenet is absent (see ../shared/README.md)"


ImageModel imported(const std::string& tflite, bool labels = true) {
  const std::string out = test::temp_dir("tflite") + "/model";
  import_tflite(coral(tflite), out, labels ? coral("imagenet_labels.txt") : "");
  return load_image_model(out);
}

TEST(Tflite, ReadsTheQuantizedMobileNetV2) {
  SKIP_WITHOUT_CORAL();
  TfliteModel m = read_tflite(coral("mobilenet_v2_1.0_224_quant.tflite"));
  ASSERT_EQ(m.ops.size(), 66u);
  EXPECT_EQ(m.ops[0].name, "CONV_2D");
  EXPECT_EQ(m.ops[0].stride_h, 2);
  EXPECT_TRUE(m.ops[0].same_padding);
  EXPECT_EQ(m.ops[0].activation, TfliteActivation::Relu6);
  EXPECT_EQ(m.ops[1].name, "DEPTHWISE_CONV_2D");
  EXPECT_EQ(m.ops[1].depth_multiplier, 1);
  EXPECT_EQ(m.ops[62].name, "AVERAGE_POOL_2D");
  EXPECT_EQ(m.ops[62].filter_h, 7);
  EXPECT_EQ(m.ops.back().name, "SOFTMAX");
  const TfliteTensor& in = m.tensor(m.inputs[0]);
  EXPECT_EQ(in.type, TfliteType::UInt8);
  EXPECT_EQ(in.shape, (std::vector<int64_t>{1, 224, 224, 3}));
  EXPECT_FLOAT_EQ(in.scale[0], 0.0078125f);
  EXPECT_EQ(in.zero_point[0], 128);
  // the stem filter: uint8 per tensor, dequantized as (q - zero point) * scale
  const int w = m.ops[0].inputs[1];
  const TfliteTensor& wt = m.tensor(w);
  ASSERT_EQ(wt.shape, (std::vector<int64_t>{32, 3, 3, 3}));
  auto raw = m.raw_values(w).to(torch::kFloat64);
  auto deq = m.dequantize(w).to(torch::kFloat64);
  EXPECT_TRUE(torch::allclose(deq, (raw - wt.zero_point[0]) * static_cast<double>(wt.scale[0]), 1e-6, 1e-7));
}

TEST(Tflite, DequantizesPerChannelInt8) {
  SKIP_WITHOUT_CORAL();
  TfliteModel m = read_tflite(coral("tf2_mobilenet_v2_1.0_224_ptq.tflite"));
  const TfliteOp& dw = m.ops[2];
  ASSERT_EQ(dw.name, "DEPTHWISE_CONV_2D");
  const TfliteTensor& wt = m.tensor(dw.inputs[1]);
  ASSERT_EQ(wt.type, TfliteType::Int8);
  ASSERT_EQ(wt.scale.size(), 32u);  // one scale per output channel, on the last axis of [1, 3, 3, 32]
  ASSERT_EQ(wt.quantized_dimension, 3);
  auto raw = m.raw_values(dw.inputs[1]).to(torch::kFloat64);
  auto deq = m.dequantize(dw.inputs[1]).to(torch::kFloat64);
  for (int c : {0, 7, 31}) {
    auto expect = raw.select(3, c) * static_cast<double>(wt.scale[c]);
    EXPECT_TRUE(torch::allclose(deq.select(3, c), expect, 1e-6, 1e-8)) << "channel " << c;
  }
}

TEST(Tflite, RefusesMalformedFiles) {
  SKIP_WITHOUT_CORAL();
  const std::string dir = test::temp_dir("badtflite");
  std::string good = read_file(coral("mobilenet_v1_0.25_128_quant.tflite"));
  auto expect_error = [&](const std::string& name, const std::string& bytes, const std::string& needle) {
    const std::string p = dir + "/" + name;
    std::ofstream(p, std::ios::binary) << bytes;
    try {
      read_tflite(p);
      ADD_FAILURE() << name << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error("empty.tflite", "", "too short");
  expect_error("text.tflite", "hello, this is not a model", "TFL3");
  expect_error("truncated.tflite", good.substr(0, good.size() / 2), "");
  expect_error("head.tflite", good.substr(0, 64), "");
  std::string bad_root = good;
  bad_root[0] = '\xff';
  bad_root[1] = '\xff';
  bad_root[2] = '\xff';
  bad_root[3] = '\x7f';
  expect_error("badroot.tflite", bad_root, "root");
  // random corruption of the middle of the file never crashes: it is read or refused
  std::mt19937 rng(3);
  for (int trial = 0; trial < 20; ++trial) {
    std::string b = good;
    for (int k = 0; k < 16; ++k) b[rng() % 4096] = static_cast<char>(rng());
    const std::string p = dir + "/fuzz.tflite";
    std::ofstream(p, std::ios::binary) << b;
    try {
      read_tflite(p);
    } catch (const Error&) {
    }
  }
}

TEST(MobileNet, MakeDivisibleAsTensorFlow) {
  EXPECT_EQ(make_divisible(32 * 0.35, 8, 8), 16);
  EXPECT_EQ(make_divisible(96, 8, 8), 96);
  EXPECT_EQ(make_divisible(16 * 0.5, 8, 8), 8);
  EXPECT_EQ(make_divisible(24 * 0.75, 8, 8), 24);  // 18 -> 16 is < 0.9 * 18, so 24
}

TEST(MobileNet, ImportedV2QuantClassifiesTheTestPictures) {
  SKIP_WITHOUT_CORAL();
  nlohmann::json ref = read_json(test::fixture("tflite_reference.json"));
  for (const std::string f : {"mobilenet_v2_1.0_224_quant.tflite", "tf2_mobilenet_v2_1.0_224_ptq.tflite"}) {
    ImageModel m = imported(f);
    EXPECT_EQ(m.config.model_type, "mobilenet_v2");
    EXPECT_FALSE(m.load_report.head_initialised);
    ASSERT_EQ(m.config.labels.size(), 1001u);
    m.model->eval();
    torch::NoGradGuard ng;
    for (auto [img, want] : {std::pair<std::string, std::string>{"bird.rgb", "chickadee"}, {"sunflower.rgb", "daisy"}}) {
      auto p = torch::softmax(m.model->logits(test::load_rgb224(coral(img), m.preprocess)), 1)[0];
      const int64_t top = p.argmax().item<int64_t>();
      EXPECT_EQ(m.config.labels[top], want) << f << " " << img;
      // the integer graph's own confidence (the tf2 model gives the bird only 0.74 itself)
      const auto& r = ref[f + "/" + img];
      auto q = torch::tensor(r["quantized_output"].get<std::vector<int64_t>>()).to(torch::kFloat32);
      const float ref_p = torch::softmax((q - r["zero_point"].get<float>()) * r["scale"].get<float>(), 0)[top].item<float>();
      EXPECT_NEAR(p[top].item<float>(), ref_p, 0.03f) << f << " " << img;
      if (ref_p >= 0.9f) {
        EXPECT_GE(p[top].item<float>(), 0.9f) << f << " " << img;
      }
    }
  }
}

// Fake-quantizes x with a TFLite tensor's (per-tensor) scale and zero point: what the integer graph holds.
torch::Tensor fake_quant(const torch::Tensor& x, const TfliteTensor& t) {
  const double s = t.scale.at(0), z = static_cast<double>(t.zero_point.empty() ? 0 : t.zero_point[0]);
  const double lo = t.type == TfliteType::UInt8 ? 0 : -128, hi = t.type == TfliteType::UInt8 ? 255 : 127;
  return (torch::clamp(torch::round(x / s) + z, lo, hi) - z) * s;
}

// Makes the imported float model compute what the quantized graph computes: every conv output, residual
// sum and the pooled features are rounded to the TFLite tensor's quantization, in graph order.
void emulate_quantized_graph(ImageClassifier& model, const TfliteModel& tfl) {
  auto convs = std::make_shared<std::vector<const TfliteTensor*>>();
  auto adds = std::make_shared<std::vector<const TfliteTensor*>>();
  auto pool = std::make_shared<const TfliteTensor*>(nullptr);
  for (const TfliteOp& o : tfl.ops) {
    const TfliteTensor* out = &tfl.tensor(o.outputs[0]);
    if (o.name == "AVERAGE_POOL_2D" || o.name == "MEAN") *pool = out;
    else if (*pool) continue;  // the classifier and after
    else if (o.name == "CONV_2D" || o.name == "DEPTHWISE_CONV_2D") convs->push_back(out);
    else if (o.name == "ADD") adds->push_back(out);
  }
  auto n_conv = std::make_shared<size_t>(0), n_add = std::make_shared<size_t>(0);
  model.set_activation_hook([=](const std::string& where, const torch::Tensor& x) {
    const TfliteTensor* t;
    if (where.size() > 4 && where.substr(where.size() - 4) == ".add") t = adds->at((*n_add)++ % adds->size());
    else if (where.size() > 4 && where.substr(where.size() - 4) == "pool") t = *pool;
    else t = convs->at((*n_conv)++ % convs->size());
    return fake_quant(x, *t);
  });
}

TEST(MobileNet, DequantizedTop5EqualsTheIntegerReference) {
  SKIP_WITHOUT_CORAL();
  const std::string ref_path = test::fixture("tflite_reference.json");
  ASSERT_TRUE(fs::exists(ref_path)) << "fixture missing: " << ref_path;
  nlohmann::json ref = read_json(ref_path);
  for (const std::string f : {"mobilenet_v2_1.0_224_quant.tflite", "tf2_mobilenet_v2_1.0_224_ptq.tflite"}) {
    ImageModel m = imported(f);
    TfliteModel tfl = read_tflite(coral(f));
    m.model->eval();
    torch::NoGradGuard ng;
    for (const std::string img : {"bird.rgb", "sunflower.rgb"}) {
      const auto& r = ref[f + "/" + img];
      const std::vector<int64_t> q = r["quantized_output"].get<std::vector<int64_t>>();
      const std::vector<int64_t> want = r["top5"].get<std::vector<int64_t>>();
      const float step = r["scale"].get<float>();
      auto deq = (torch::tensor(q).to(torch::kFloat32) - r["zero_point"].get<float>()) * step;
      torch::Tensor x = test::load_rgb224(coral(img), m.preprocess);
      if (tfl.ops[0].name == "QUANTIZE") x = fake_quant(x, tfl.tensor(tfl.ops[0].outputs[0]));

      // 1. the float model (weights dequantized, activations in float) ranks like the integer graph: same
      //    top-1, and the same top-5 up to classes whose reference logits lie within kNoise quantization
      //    steps of the 5th place (the integer graph's own rounding moves logits by up to ~3 steps, see 2.)
      constexpr float kNoise = 3.0f;
      m.model->set_activation_hook(nullptr);
      auto logits = m.model->logits(x)[0];
      EXPECT_EQ(logits.argmax().item<int64_t>(), want[0]) << f << " " << img;
      EXPECT_GE(torch::cosine_similarity(logits, deq, 0).item<float>(), 0.98f) << f << " " << img;
      auto float_top5 = std::get<1>(logits.topk(5));
      const float ref5 = deq[want[4]].item<float>();
      for (int k = 0; k < 5; ++k) {
        const int64_t c = float_top5[k].item<int64_t>();
        const bool in_ref = std::find(want.begin(), want.end(), c) != want.end();
        EXPECT_TRUE(in_ref || std::round((ref5 - deq[c].item<float>()) / step) <= kNoise)
            << f << " " << img << ": class " << c << " is in the float top-5, its reference logit " << deq[c].item<float>()
            << " is more than " << kNoise << " steps below the reference's 5th " << ref5;
      }
      const float float5 = logits[float_top5[4].item<int64_t>()].item<float>();
      for (int64_t c : want)
        EXPECT_GE(logits[c].item<float>(), float5 - kNoise * step) << f << " " << img << ": reference top-5 class " << c;

      // 2. the same weights run as the integer graph runs (each activation rounded to its tensor's
      //    quantization, logits too): same top-1, every logit within kNoise steps of the reference and
      //    most of them equal (float32 weights against exact integer products flip a few roundings,
      //    which the 50-odd layers carry forward)
      emulate_quantized_graph(*m.model, tfl);
      auto emu = m.model->logits(x)[0];
      const TfliteTensor* logits_t = nullptr;
      for (const TfliteOp& o : tfl.ops)
        if (o.name == "CONV_2D" || o.name == "FULLY_CONNECTED") logits_t = &tfl.tensor(o.outputs[0]);
      emu = fake_quant(emu, *logits_t);
      EXPECT_EQ(emu.argmax().item<int64_t>(), want[0]) << f << " " << img;
      auto steps = ((emu - deq).abs() / step).round();
      EXPECT_LE(steps.max().item<float>(), kNoise) << f << " " << img;
      EXPECT_GE((steps == 0).to(torch::kFloat32).mean().item<float>(), 0.4f) << f << " " << img;
      m.model->set_activation_hook(nullptr);
    }
  }
}

TEST(MobileNet, ImportedV1EmbeddingExtractorMatchesTheReference) {
  SKIP_WITHOUT_CORAL();
  ImageModel m = imported("mobilenet_v1_1.0_224_quant_embedding_extractor.tflite", false);
  EXPECT_EQ(m.config.model_type, "mobilenet_v1");
  EXPECT_EQ(m.model->num_labels(), 0);
  EXPECT_EQ(m.model->feature_size(), 1024);
  nlohmann::json ref = read_json(test::fixture("tflite_reference.json"));
  m.model->eval();
  torch::NoGradGuard ng;
  std::vector<torch::Tensor> feats;
  for (const std::string img : {"bird.rgb", "sunflower.rgb"}) {
    const auto& r = ref["mobilenet_v1_1.0_224_quant_embedding_extractor.tflite/" + img];
    auto q = torch::tensor(r["quantized_output"].get<std::vector<int64_t>>()).to(torch::kFloat32);
    auto deq = (q - r["zero_point"].get<float>()) * r["scale"].get<float>();
    auto f = m.model->features(test::load_rgb224(coral(img), m.preprocess))[0];
    ASSERT_EQ(f.numel(), 1024);
    EXPECT_GE(torch::cosine_similarity(f, deq, 0).item<float>(), 0.98f) << img;
    feats.push_back(f);
  }
  // different pictures give clearly different features
  EXPECT_LT(torch::cosine_similarity(feats[0], feats[1], 0).item<float>(), 0.9f);
}

TEST(MobileNet, ImportsEveryWidthAndSaveReloadIsIdentical) {
  SKIP_WITHOUT_CORAL();
  for (auto [f, mult, size] : {std::tuple<std::string, double, int64_t>{"mobilenet_v1_0.25_128_quant.tflite", 0.25, 128},
                               {"mobilenet_v1_0.5_160_quant.tflite", 0.5, 160}}) {
    ImageModel m = imported(f);
    EXPECT_EQ(m.config.model_type, "mobilenet_v1");
    EXPECT_DOUBLE_EQ(m.config.depth_multiplier, mult);
    EXPECT_EQ(m.config.image_size, size);
    EXPECT_EQ(m.preprocess.crop_height, size);
    m.model->eval();
    const std::string dir = test::temp_dir("mnsave") + "/m";
    save_image_model(m, dir);
    ImageModel back = load_image_model(dir);
    back.model->eval();
    torch::NoGradGuard ng;
    auto x = torch::randn({2, 3, size, size});
    EXPECT_TRUE(torch::equal(m.model->logits(x), back.model->logits(x))) << f;
  }
}

TEST(MobileNet, ParamGroupsCoverEveryParameterBottomToTop) {
  ImageConfig c;
  c.model_type = "mobilenet_v2";
  MobileNetV2Classifier m(c, 3);
  auto groups = m.param_groups();
  ASSERT_EQ(groups.size(), 1u + 17u + 1u);  // stem, 16 blocks + conv_1x1, head
  EXPECT_EQ(groups.front().name, "stem");
  EXPECT_EQ(groups.back().name, "head");
  size_t n = 0;
  for (auto& g : groups) {
    EXPECT_FALSE(g.params.empty()) << g.name;
    n += g.params.size();
  }
  EXPECT_EQ(n, m.parameters().size());
  EXPECT_EQ(groups.back().params.size(), 2u);  // classifier weight + bias
  EXPECT_EQ(groups[17].params.front().first, "mobilenet_v2.conv_1x1.convolution.weight");
  ImageConfig c1;
  c1.model_type = "mobilenet_v1";
  MobileNetV1Classifier v1(c1, 5);
  EXPECT_EQ(v1.param_groups().size(), 1u + 13u + 1u);
}

TEST(MobileNet, ImportRefusesWhatItCannotRead) {
  SKIP_WITHOUT_CORAL();
  const std::string dir = test::temp_dir("tflite-refuse");
  EXPECT_THROW(import_tflite(dir + "/missing.tflite", dir + "/out"), Error);
  // wrong number of labels
  const std::string labels = dir + "/labels.txt";
  std::ofstream(labels) << "cat\ndog\n";
  try {
    import_tflite(coral("mobilenet_v1_0.25_128_quant.tflite"), dir + "/out", labels);
    ADD_FAILURE() << "2 labels for 1001 classes were accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("2 labels"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir + "/out"));
  // an existing non-empty output is kept
  fs::create_directories(dir + "/full");
  std::ofstream(dir + "/full/keep.txt") << "x";
  EXPECT_THROW(import_tflite(coral("mobilenet_v1_0.25_128_quant.tflite"), dir + "/full"), Error);
  EXPECT_TRUE(fs::exists(dir + "/full/keep.txt"));
}

// EfficientNet-Lite's layout without any checkpoint: Lite0's 16 blocks under timm's names (4.65M parameters
// with ImageNet's 1,000 classes, as timm's tf_efficientnet_lite0), Lite2's scaled channels and repeats
// (first and last stage kept), every parameter in exactly one group, batch norms initialised to the
// identity, and a save / load round trip that answers the same.
TEST(EfficientNet, LiteLayoutGroupsAndRoundTrip) {
  ImageConfig c = ImageConfig::from_json({{"model_type", "efficientnet_lite"}}, "config.json");
  auto lite0 = make_image_classifier(c, 1000);
  int64_t params = 0;
  for (const auto& p : lite0->parameters()) params += p.numel();
  EXPECT_EQ(params, 4652008);  // timm.create_model("tf_efficientnet_lite0"): 4,652,008
  EXPECT_EQ(lite0->num_layers(), 17);
  const auto names = lite0->named_parameters(true);
  EXPECT_TRUE(names.contains("blocks.0.0.conv_dw.weight") && names.contains("blocks.6.0.conv_pwl.weight") &&
              names.contains("conv_head.weight") && names.contains("classifier.bias"));
  size_t grouped = 0;
  for (const auto& g : lite0->param_groups()) grouped += g.params.size();
  EXPECT_EQ(grouped, names.size());
  c = ImageConfig::from_json({{"model_type", "efficientnet_lite"}, {"width_coefficient", 1.1}, {"depth_coefficient", 1.2},
                              {"id2label", {{"0", "ok"}, {"1", "scratch"}}}},
                             "config.json");
  auto lite2 = make_image_classifier(c, 2);
  EXPECT_EQ(lite2->num_layers(), 1 + 3 + 3 + 4 + 4 + 5 + 1 + 1);  // repeats ceil(1.2 n) but the first and last stage
  EXPECT_EQ(lite2->named_parameters(true)["blocks.6.0.conv_pwl.weight"].size(0), 352);  // make_divisible(320 * 1.1, 8)
  lite2->init_all(3);
  EXPECT_TRUE(torch::equal(lite2->named_parameters(true)["blocks.1.0.bn2.weight"], torch::ones({96})));
  EXPECT_TRUE(torch::equal(lite2->named_parameters(true)["bn1.bias"], torch::zeros({32})));
  ImageModel m;
  m.config = c;
  m.model = lite2;
  const std::string dir = test::temp_dir("lite2") + "/m";
  save_image_model(m, dir);
  ImageModel back = load_image_model(dir);
  lite2->eval();
  back.model->eval();
  torch::NoGradGuard ng;
  const auto x = torch::randn({2, 3, 67, 90});
  EXPECT_TRUE(torch::equal(lite2->logits(x), back.model->logits(x)));
  EXPECT_EQ(back.config.labels, (std::vector<std::string>{"ok", "scratch"}));
}

}  // namespace
}  // namespace kotsu
