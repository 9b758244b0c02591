// models/llama (Llama with GQA, llama3 rope scaling and biases; Qwen2 with tied embeddings) against the
// float64 reference written from modeling_llama.py / modeling_qwen2.py (fixtures/make_tiny_llama.py).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "kotsu/io/safetensors.hpp"
#include "kotsu/models/causal_lm.hpp"
#include "kotsu/models/generate.hpp"
#include "kotsu/models/llama.hpp"
#include "test_util.hpp"

using namespace kotsu;

namespace {

double max_abs(const torch::Tensor& a, const torch::Tensor& b) { return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>(); }

std::vector<int64_t> as_vector(const torch::Tensor& t) {
  auto c = t.to(torch::kLong).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

class LlamaFamily : public ::testing::TestWithParam<std::string> {};

}  // namespace

TEST_P(LlamaFamily, LogitsCacheAndGreedyDecodingEqualTheReference) {
  const std::string name = GetParam();
  auto ref = load_safetensors(test::fixture(name + "_ref.safetensors"));
  const torch::Tensor ids = ref["ids"].to(torch::kLong);
  torch::NoGradGuard ng;
  auto m64 = load_causal_lm(test::fixture(name), torch::kDouble);
  m64.model->eval();
  EXPECT_TRUE(m64.load_report.unexpected.empty());
  EXPECT_LT(max_abs(std::dynamic_pointer_cast<Llama>(m64.model)->inv_freq(), ref["inv_freq"]), 1e-12);
  EXPECT_LT(max_abs(m64.model->logits(ids), ref["logits"]), 1e-10);
  auto m = load_causal_lm(test::fixture(name));
  m.model->eval();
  const auto full = m.model->logits(ids);
  const double scale = ref["logits"].abs().max().item<double>();
  EXPECT_LT(max_abs(full, ref["logits"]), 1e-5 * scale);
  // one token at a time through the cache: the same logits (rotary positions continue from the cache)
  KvCache cache;
  std::vector<torch::Tensor> parts{m.model->logits(ids.slice(1, 0, 3), &cache)};
  for (int64_t t = 3; t < ids.size(1); ++t) parts.push_back(m.model->logits(ids.slice(1, t, t + 1), &cache));
  EXPECT_LT(max_abs(torch::cat(parts, 1), full), 1e-5 * scale);
  EXPECT_EQ(cache.k[0].size(1), m.config.num_kv_heads);  // the cache holds the shared heads only
  // greedy decoding, with and without the cache, gives the reference's tokens
  const std::vector<int64_t> prompt = as_vector(ref["prompt"]), expected = as_vector(ref["greedy"]);
  GenerateOptions o;
  o.max_new_tokens = static_cast<int64_t>(expected.size());
  EXPECT_EQ(generate(*m64.model, prompt, o), expected);
  EXPECT_EQ(generate(*m.model, prompt, o), expected);
  o.use_cache = false;
  EXPECT_EQ(generate(*m.model, prompt, o), expected);
  // every parameter in exactly one group, bottom to top
  size_t n = 0;
  auto groups = m.model->param_groups();
  EXPECT_EQ(groups.size(), static_cast<size_t>(m.config.num_layers + 2));
  for (const auto& g : groups) n += g.params.size();
  EXPECT_EQ(n, m.model->parameters().size());
}

INSTANTIATE_TEST_SUITE_P(Models, LlamaFamily, ::testing::Values("tiny_llama", "tiny_qwen2"));
