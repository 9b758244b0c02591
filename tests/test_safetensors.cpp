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

namespace {
// A GGUF v3 file with one metadata key per entry of `kv` (u32 values) and the given tensors, laid out as
// llama.cpp's writer does (32-byte alignment, offsets in order).
struct GgufTensorSpec {
  std::string name;
  std::vector<uint64_t> dims;
  uint32_t type;
  uint64_t offset, bytes;
};
std::string make_gguf(const std::vector<std::pair<std::string, uint32_t>>& kv, const std::vector<GgufTensorSpec>& tensors) {
  test::GgufBytes g;
  g.u32(3).u64(tensors.size()).u64(kv.size());
  for (const auto& [k, v] : kv) g.str(k).u32(4).u32(v);  // UINT32 values
  uint64_t data = 0;
  for (const auto& t : tensors) {
    g.str(t.name).u32(static_cast<uint32_t>(t.dims.size()));
    for (auto d : t.dims) g.u64(d);
    g.u32(t.type).u64(t.offset);
    data = std::max(data, t.offset + t.bytes);
  }
  g.b.resize((g.b.size() + 31) / 32 * 32, '\0');
  g.b.append(static_cast<size_t>(std::min<uint64_t>(data, 1 << 20)), '\0');
  return g.b;
}
}  // namespace

// Checked as strictly as llama.cpp's loader (what a hostile-input probe found kotsu inspect accepting).
TEST(Gguf, RefusesWhatLlamaCppRefuses) {
  const std::string dir = test::temp_dir("gguf-strict");
  auto expect = [&](const std::string& name, const std::string& bytes, const std::string& what) {
    const std::string path = dir + "/" + name;
    write_atomic(path, bytes);
    try {
      read_gguf(path);
      ADD_FAILURE() << "no error for " << name;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << name << ": " << e.what();
    }
  };
  // the valid file first: two F32 tensors, the second at the aligned end of the first
  const std::string ok = make_gguf({{"general.alignment", 32}}, {{"a", {3}, 0, 0, 12}, {"b", {2, 2}, 0, 32, 16}});
  write_atomic(dir + "/ok.gguf", ok);
  GgufFile f = read_gguf(dir + "/ok.gguf");
  ASSERT_EQ(f.tensors.size(), 2u);
  EXPECT_EQ(f.tensors[1].bytes, 16u);
  EXPECT_EQ(f.data_offset % 32, 0u);
  EXPECT_STREQ(gguf_type_name(8), "Q8_0");
  EXPECT_EQ(gguf_type_name(4), nullptr);  // removed from ggml

  expect("type.gguf", make_gguf({}, {{"a", {3}, 999, 0, 12}}), "tensor[0] 'a': unknown tensor type 999");
  expect("removed.gguf", make_gguf({}, {{"a", {32}, 5, 0, 20}}), "unknown tensor type 5");
  expect("offset.gguf", make_gguf({}, {{"a", {3}, 0, uint64_t(1) << 63, 12}}), "offset 9223372036854775808 is not where the previous tensor ends (0)");
  expect("gap.gguf", make_gguf({}, {{"a", {3}, 0, 0, 12}, {"b", {3}, 0, 64, 12}}), "'b': offset 64 is not where the previous tensor ends (32)");
  expect("dupkey.gguf", make_gguf({{"general.alignment", 32}, {"general.alignment", 64}}, {}), "general.alignment: appears twice");
  expect("dupname.gguf", make_gguf({}, {{"a", {3}, 0, 0, 12}, {"a", {3}, 0, 32, 12}}), "tensor[1] 'a': appears twice");
  expect("align.gguf", make_gguf({{"general.alignment", 24}}, {}), "general.alignment: must be a power of two");
  expect("block.gguf", make_gguf({}, {{"q", {33}, 8, 0, 34}}), "first dimension 33 is not a multiple of Q8_0's block of 32");
  expect("dims.gguf", make_gguf({}, {{"a", {1, 1, 1, 1, 1}, 0, 0, 4}}), "5 dimensions");
  expect("overflow.gguf", make_gguf({}, {{"a", {uint64_t(1) << 40, uint64_t(1) << 40}, 0, 0, 4}}), "overflow");
  std::string cut = ok.substr(0, ok.size() - 8);
  expect("short.gguf", cut, "truncated");
}

// Loading copies each tensor out of the file's memory map and drops its mapped pages: the weights are resident
// once (the copies), not twice (copies and mapping), so a model's load peaks at its size, not double.
TEST(Safetensors, LoadingHoldsTheWeightsOnceInMemory) {
  const std::string path = test::temp_dir("st-peak") + "/big.safetensors";
  const int64_t n = 16 << 20;  // two tensors of 64 MB
  save_safetensors(path, {{"a", torch::randn({n})}, {"b", torch::randn({n})}});
  const int64_t file_bytes = 2 * n * 4;
  ASSERT_TRUE(test::reset_peak_resident()) << "/proc/self/clear_refs refused: cannot measure peak memory";
  const int64_t base = test::resident_bytes();
  auto t = load_safetensors(path);
  const int64_t grew = test::peak_resident_bytes() - base;
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t["a"].numel(), n);
  EXPECT_GT(grew, file_bytes * 9 / 10) << "the copies are resident";
  EXPECT_LT(grew, file_bytes * 5 / 4) << "peak grew by " << grew / 1e6 << " MB for a " << file_bytes / 1e6 << " MB file";
}
