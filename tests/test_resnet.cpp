// ResNet-18/50 against torchvision 0.14 on random weights (tests/fixtures/make_resnet.py), from
// Hugging Face names and from torchvision names (detected and renamed on load).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "kotsu/io/safetensors.hpp"
#include "kotsu/models/image_model.hpp"
#include "kotsu/models/resnet.hpp"
#include "test_util.hpp"

namespace kotsu {
namespace {

TEST(ResNet, MatchesTorchvisionFromBothNamings) {
  for (const std::string arch : {"resnet18", "resnet50"}) {
    auto ref = load_safetensors(test::fixture(arch + "_ref.safetensors"));
    for (const std::string names : {"hf", "torchvision"}) {
      ImageModel m = load_image_model(test::fixture(arch + "_" + names));
      EXPECT_FALSE(m.load_report.head_initialised) << arch << " " << names;
      EXPECT_TRUE(m.load_report.unexpected.empty()) << arch << " " << names << ": " << m.load_report.unexpected.front();
      m.model->eval();
      torch::NoGradGuard ng;
      auto f = m.model->features(ref.at("x"));
      auto logits = m.model->head(f);
      // float32 against the float64 reference: equal up to rounding, relative to the largest value
      // (ResNet-50's features reach ~100): the statistical bound of its chain of sums (up to 3x3x512 =
      // 4,608 products; 18 or 50 of them, plus the head)
      auto rel = [](const torch::Tensor& a, const torch::Tensor& b) {
        return ((a - b).abs().max() / b.abs().max()).item<double>();
      };
      const double depth = arch == "resnet18" ? 19 : 51;
      EXPECT_LT(rel(f, ref.at("features")), test::float32_expected(1.0, 4608, depth)) << arch << " " << names;
      EXPECT_LT(rel(logits, ref.at("logits")), test::float32_expected(1.0, 4608, depth)) << arch << " " << names;
      // float64 on both sides: the same function, within 1e-5 absolute (rounding no longer hides anything)
      m.model->to(torch::kFloat64);
      auto l64 = m.model->logits(ref.at("x").to(torch::kFloat64));
      EXPECT_LT((l64 - ref.at("logits64")).abs().max().item<double>(), 1e-5) << arch << " " << names;
    }
  }
}

TEST(ResNet, ParamGroupsAreStemBlocksHead) {
  ImageModel m = load_image_model(test::fixture("resnet18_hf"));
  auto g = m.model->param_groups();
  ASSERT_EQ(g.size(), 1u + 8u + 1u);  // stem, 8 basic blocks, head
  EXPECT_EQ(g.front().name, "stem");
  EXPECT_EQ(g[1].params.front().first.rfind("resnet.encoder.stages.0.layers.0.", 0), 0u);
  EXPECT_EQ(g.back().params.front().first, "classifier.1.weight");
  size_t n = 0;
  for (auto& x : g) n += x.params.size();
  EXPECT_EQ(n, m.model->parameters().size());
}

TEST(ResNet, TorchvisionNamesAreRecognisedAndRenamed) {
  auto t = load_safetensors(test::fixture("resnet50_torchvision/model.safetensors"));
  ASSERT_TRUE(has_torchvision_resnet_names(t));
  auto hf = resnet_hf_names(t);
  EXPECT_TRUE(hf.count("resnet.encoder.stages.0.layers.0.shortcut.convolution.weight"));
  EXPECT_TRUE(hf.count("resnet.encoder.stages.3.layers.2.layer.2.normalization.running_var"));
  EXPECT_FALSE(has_torchvision_resnet_names(load_safetensors(test::fixture("resnet50_hf/model.safetensors"))));
}

}  // namespace
}  // namespace kotsu
