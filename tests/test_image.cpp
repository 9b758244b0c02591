// Picture decoding (vision/image) against PIL's decoded pixels, refusal of broken pictures, and the
// three image dataset layouts (data/image_dataset). Fixtures: tests/fixtures/make_images.py.
#include <gtest/gtest.h>

#include <filesystem>

#include "kotsu/core/error.hpp"
#include "kotsu/data/image_dataset.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/vision/image.hpp"
#include "test_util.hpp"

namespace kotsu {
namespace {

std::string img(const std::string& f) { return test::fixture("images/" + f); }

TEST(Image, DecodesEveryFormatLikePil) {
  for (const std::string f : {"rgb.jpg", "rgb444.jpg", "gray.jpg", "rgb.png", "gray.png", "rgba.png", "palette.png",
                              "rgb.bmp", "rgb.webp", "rgb.gif"}) {
    Image im = decode_image(img(f));
    EXPECT_EQ(im.width, 53) << f;
    EXPECT_EQ(im.height, 37) << f;
    const std::string ref = read_file(img(f) + ".rgb");
    ASSERT_EQ(im.pixels.size(), ref.size()) << f;
    int max_diff = 0;
    for (size_t i = 0; i < ref.size(); ++i)
      max_diff = std::max(max_diff, std::abs(int(im.pixels[i]) - int(static_cast<unsigned char>(ref[i]))));
    EXPECT_EQ(max_diff, 0) << f << ": pixels differ from PIL's by up to " << max_diff;
  }
}

TEST(Image, JpegDctScalingKeepsTheShorterSideAtLeastMinSide) {
  Image full = decode_image(img("rgb.jpg"));
  Image half = decode_image(img("rgb.jpg"), 16);  // 53x37 -> 1/2 is 27x19 (>= 16), 1/4 would be 14x10
  EXPECT_EQ(half.width, 27);
  EXPECT_EQ(half.height, 19);
  Image same = decode_image(img("rgb.jpg"), 37);  // no smaller scale keeps 37 rows
  EXPECT_EQ(same.pixels, full.pixels);
}

TEST(Image, RefusesBrokenPicturesNamingTheFile) {
  struct Case {
    std::string file, needle;
  };
  for (const Case& c : std::vector<Case>{{"truncated_rgb.jpg", "jpeg: corrupt or truncated"},
                                         {"truncated_rgb.png", "png: corrupt or truncated"},
                                         {"truncated_rgb.bmp", "bmp: truncated"},
                                         {"truncated_rgb.webp", "webp"},
                                         {"text.jpg", "not a JPEG, PNG, WebP, BMP or GIF"},
                                         {"empty.png", "empty file"},
                                         {"huge.png", "over the limit"},
                                         {"nowhere.png", "nowhere.png"}}) {
    try {
      decode_image(img(c.file));
      ADD_FAILURE() << c.file << " was decoded";
    } catch (const Error& e) {
      const std::string w = e.what();
      EXPECT_NE(w.find(c.file), std::string::npos) << w;
      EXPECT_NE(w.find(c.needle), std::string::npos) << w;
      EXPECT_EQ(w.find('\n'), std::string::npos) << w;
    }
  }
}

TEST(ImageDataset, FolderCsvAndIdxAgree) {
  const std::string root = test::fixture("image_task");
  ImageDataset folder = load_image_dataset(root + "/folder");
  ImageDataset csv = load_image_dataset(root + "/images.csv");
  ImageDataset idx = load_image_dataset(root + "/train-images-idx3-ubyte.gz");
  EXPECT_EQ(folder.classes, (std::vector<std::string>{"cat", "dog", "fox"}));
  EXPECT_EQ(csv.classes, folder.classes);
  EXPECT_EQ(idx.classes, (std::vector<std::string>{"0", "1", "2"}));
  ASSERT_EQ(folder.size(), 12u);
  ASSERT_EQ(csv.size(), 12u);
  ASSERT_EQ(idx.size(), 12u);
  EXPECT_EQ(folder.targets, csv.targets);
  EXPECT_EQ(folder.targets, idx.targets);
  for (size_t i = 0; i < 12; ++i) {
    Image a = folder.image(i), b = csv.image(i), g = idx.image(i);
    EXPECT_EQ(a.pixels, b.pixels) << i;
    ASSERT_EQ(g.width, 8);
    EXPECT_EQ(g.pixels[0], g.pixels[1]);  // gray replicated to RGB
  }
  // the colour says the class
  Image dog = folder.image(4);
  EXPECT_GT(dog.pixels[1], 150);
  EXPECT_LT(dog.pixels[0], 60);
  EXPECT_EQ(folder.subset({4, 0}).targets, (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(remap_targets(csv, {"fox", "dog", "cat"})[0], 2);
  EXPECT_THROW(remap_targets(csv, {"dog", "cat"}), Error);
}

TEST(ImageDataset, ReadsFashionMnistFromDebian) {
  const std::string f = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
  if (!std::filesystem::exists(f)) KOTSU_SKIP() << "Debian's dataset-fashion-mnist is not installed (scripts/setup installs it)";
  ImageDataset ds = load_image_dataset(f);
  ASSERT_EQ(ds.size(), 10000u);
  EXPECT_EQ(ds.classes.size(), 10u);
  EXPECT_EQ(ds.rows, 28);
  EXPECT_EQ(ds.targets[0], 9);  // the first test picture is an ankle boot
  std::vector<int> per_class(10);
  for (auto t : ds.targets) per_class[t]++;
  for (int c : per_class) EXPECT_EQ(c, 1000);
  Image im = ds.image(0);
  EXPECT_EQ(im.width, 28);
}

TEST(ImageDataset, SkipBadDropsAndCountsUnreadablePictures) {
  const std::string dir = test::temp_dir("skipbad");
  const std::string good = read_file(img("rgb.png")), bad = read_file(img("truncated_rgb.png"));
  for (const char* c : {"a", "b"}) {
    std::filesystem::create_directories(dir + "/" + c);
    write_atomic(dir + "/" + c + "/1.png", good);
    write_atomic(dir + "/" + c + "/2.png", good);
  }
  write_atomic(dir + "/b/3.png", bad);
  ImageDataset ds = load_image_dataset(dir);
  ASSERT_EQ(ds.size(), 5u);
  try {
    ImageDataset copy = ds;
    check_images(copy, false, 2);
    ADD_FAILURE() << "a truncated picture passed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("b/3.png"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--skip-bad"), std::string::npos) << e.what();
  }
  auto skipped = check_images(ds, true, 2);
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_NE(skipped[0].first.find("b/3.png"), std::string::npos);
  EXPECT_EQ(ds.size(), 4u);
  EXPECT_EQ(ds.targets, (std::vector<int64_t>{0, 0, 1, 1}));
}

TEST(ImageDataset, RefusesMalformedLayouts) {
  const std::string dir = test::temp_dir("baddata");
  std::filesystem::create_directories(dir + "/one/cat");
  write_atomic(dir + "/one/cat/x.png", read_file(img("rgb.png")));
  EXPECT_THROW(load_image_dataset(dir + "/one"), Error);  // a single class
  write_atomic(dir + "/missing.csv", "path,label\nnot/there.png,cat\n");
  try {
    load_image_dataset(dir + "/missing.csv");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("line 2"), std::string::npos) << e.what();
  }
  write_atomic(dir + "/cols.csv", "file_name,y\na.png,cat\n");
  EXPECT_THROW(load_image_dataset(dir + "/cols.csv"), Error);
  // an IDX file whose header promises more than it holds
  std::string idx("\0\0\x08\x03\0\0\0\x05\0\0\0\x02\0\0\0\x02", 16);
  idx += std::string(12, '\0');
  write_atomic(dir + "/t-images-idx3-ubyte", idx);
  write_atomic(dir + "/t-labels-idx1-ubyte", std::string("\0\0\x08\x01\0\0\0\x05\0\0\0\0\0", 13));
  try {
    load_image_dataset(dir + "/t-images-idx3-ubyte");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("the header says 20"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kotsu
