#include "kotsu/io/safetensors.hpp"

#include <torch/torch.h>

#include <cstring>

#include "kotsu/core/error.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/io/gguf.hpp"
#include "test_util.hpp"

using namespace kotsu;

namespace {

std::string make_file(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}

void expect_refused(const std::string& bytes, const std::string& needle) {
  std::string path = test::temp_dir("st") + "/bad.safetensors";
  write_atomic(path, bytes);
  try {
    SafetensorsReader r(path);
    FAIL() << "accepted a malformed file, expected: " << needle;
  } catch (const Error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find(path), std::string::npos) << what;
    EXPECT_NE(what.find(needle), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << "error must be one line: " << what;
  }
}

}  // namespace

TEST(Safetensors, RoundTripAllDtypes) {
  std::string path = test::temp_dir("st") + "/m.safetensors";
  torch::manual_seed(0);
  NamedTensors t = {{"b.f32", torch::randn({3, 4})},
                    {"a.f16", torch::randn({5}).to(torch::kHalf)},
                    {"c.bf16", torch::randn({2, 2, 2}).to(torch::kBFloat16)},
                    {"d.i64", torch::arange(7, torch::kLong)},
                    {"e.scalar", torch::tensor(3.5)},
                    {"f.empty", torch::zeros({0, 4})}};
  save_safetensors(path, t, {{"format", "pt"}});
  SafetensorsReader r(path);
  EXPECT_EQ(r.metadata().at("format"), "pt");
  ASSERT_EQ(r.tensors().size(), t.size());
  for (auto& [name, tensor] : t) {
    auto back = r.tensor(name);
    EXPECT_EQ(back.scalar_type(), tensor.scalar_type()) << name;
    EXPECT_TRUE(torch::equal(back, tensor)) << name;
  }
  // header is padded so the data section starts 8-byte aligned
  std::string raw = read_file(path);
  uint64_t n;
  std::memcpy(&n, raw.data(), 8);
  EXPECT_EQ((n + 8) % 8, 0u);
}

TEST(Safetensors, ReadsFilesFromThePythonWriter) {
  auto t = load_safetensors(test::fixture("tiny_bert/model.safetensors"));
  EXPECT_EQ(t.at("bert.embeddings.word_embeddings.weight").size(1), 32);
}

TEST(Safetensors, RefusesMalformedFiles) {
  const std::string ok_hdr = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  expect_refused(std::string(4, '\0'), "too short");
  expect_refused(make_file(ok_hdr, std::string(8, 'a')).substr(0, 20), "runs past the end");             // truncated header
  expect_refused(make_file(ok_hdr, std::string(4, 'a')), "runs past");                                    // truncated data
  std::string huge(8, '\0');
  uint64_t big = 200'000'000;
  std::memcpy(huge.data(), &big, 8);
  expect_refused(huge + "{}", "100 MB");
  expect_refused(make_file(R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(12, 'a')), "need 12 bytes");
  expect_refused(make_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                           std::string(12, 'a')), "overlaps");
  expect_refused(make_file(R"({"x":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})", std::string(8, 'a')), "unknown dtype");
  expect_refused(make_file(R"({"x":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", std::string(8, 'a')), "non-negative");
  expect_refused(make_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", std::string(8, 'a')), "end before begin");
  expect_refused(make_file(R"({"x": [1, 2)", ""), "invalid JSON");
  expect_refused(make_file(R"({"x":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", std::string(8, 'a')), "too large");
}

TEST(Gguf, RefusesTruncatedFile) {
  std::string src = test::shared_dir() + "/tokenizers/llama.cpp-vocab/ggml-vocab-bert-bge.gguf";
  KOTSU_REQUIRE_PATH(src);
  std::string all = read_file(src);
  std::string path = test::temp_dir("gguf") + "/cut.gguf";
  write_atomic(path, all.substr(0, all.size() / 2));
  try {
    read_gguf(path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
  write_atomic(path, "GGML" + all.substr(4));
  EXPECT_THROW(read_gguf(path), Error);
}
