// vision/transforms: the evaluation transform equals torchvision's (resize of the shorter side with
// antialiasing, center crop, normalise), and the training transform is deterministic per generator.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "kotsu/io/file.hpp"
#include "kotsu/vision/image.hpp"
#include "kotsu/vision/transforms.hpp"
#include "test_util.hpp"

namespace kotsu {
namespace {

ImagePreprocess preprocess(int64_t resize, int64_t crop) {
  ImagePreprocess p;
  p.resize_shortest = resize;
  p.crop_height = p.crop_width = crop;
  return p;
}

TEST(Transforms, EvalTransformMatchesTorchvision) {
  Image img = decode_image(test::fixture("images/rgb.png"));  // 53 x 37
  for (auto [size, crop, name] : {std::tuple<int64_t, int64_t, std::string>{20, 16, "shrink"}, {64, 48, "grow"}}) {
    torch::Tensor x = eval_transform(img, preprocess(size, crop));
    ASSERT_EQ(x.sizes(), (std::vector<int64_t>{3, crop, crop}));
    std::string ref = read_file(test::fixture("images/rgb.png.eval_" + name + ".f32"));
    auto want = torch::from_blob(ref.data(), {3, crop, crop}, torch::kFloat32).clone();
    EXPECT_LT((x - want).abs().max().item<float>(), 1e-4f) << name;
  }
}

TEST(Transforms, TrainTransformIsDeterministicPerGeneratorAndVaries) {
  Image img = decode_image(test::fixture("images/rgb.jpg"));
  ImagePreprocess p = preprocess(40, 32);
  Augment a;
  a.rotation = 15;
  a.hue = 0.05;
  a.vflip = true;
  std::mt19937_64 r1(7), r2(7), r3(8);
  torch::Tensor x1 = train_transform(img, p, a, r1), x2 = train_transform(img, p, a, r2), x3 = train_transform(img, p, a, r3);
  ASSERT_EQ(x1.sizes(), (std::vector<int64_t>{3, 32, 32}));
  EXPECT_TRUE(torch::equal(x1, x2));
  EXPECT_FALSE(torch::equal(x1, x3));
  EXPECT_TRUE(torch::isfinite(x1).all().item<bool>());
  // augmentation off: the evaluation transform
  a.enabled = false;
  EXPECT_TRUE(torch::equal(train_transform(img, p, a, r1), eval_transform(img, p)));
}

TEST(Transforms, FlipsAndCropsKeepThePixels) {
  Image img;
  img.height = 2;
  img.width = 3;
  img.pixels = {0, 0, 0, 10, 10, 10, 20, 20, 20, 30, 30, 30, 40, 40, 40, 50, 50, 50};
  torch::Tensor t = image_to_tensor(img);
  EXPECT_EQ(t[0][0][2].item<float>(), 20.0f);
  EXPECT_EQ(t[1][1][0].item<float>(), 30.0f);
  torch::Tensor c = center_crop(t, 2, 1);
  EXPECT_EQ(c[0][0][0].item<float>(), 10.0f);
  EXPECT_EQ(c[0][1][0].item<float>(), 40.0f);
  EXPECT_EQ(resize_shorter(t, 4).sizes(), (std::vector<int64_t>{3, 4, 6}));
  // a crop larger than the picture pads with zeros, like torchvision
  EXPECT_EQ(center_crop(t, 4, 3)[0][0][0].item<float>(), 0.0f);
}

}  // namespace
}  // namespace kotsu
