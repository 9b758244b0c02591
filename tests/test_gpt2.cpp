// models/gpt2, models/causal_lm and models/generate against the float64 reference written from
// modeling_gpt2.py (fixtures/make_tiny_gpt2.py).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>

#include "kotsu/core/error.hpp"
#include "kotsu/infer/evaluate_lm.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/io/safetensors.hpp"
#include "kotsu/models/causal_lm.hpp"
#include "kotsu/models/generate.hpp"
#include "kotsu/text/tokenizer.hpp"
#include "test_util.hpp"

using namespace kotsu;

namespace {

std::map<std::string, torch::Tensor> reference() { return load_safetensors(test::fixture("tiny_gpt2_ref.safetensors")); }

double max_abs(const torch::Tensor& a, const torch::Tensor& b) { return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>(); }

std::vector<int64_t> as_vector(const torch::Tensor& t) {
  auto c = t.to(torch::kLong).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

}  // namespace

TEST(Gpt2, LogitsEqualTheReference) {
  auto ref = reference();
  const torch::Tensor ids = ref["ids"].to(torch::kLong);
  torch::NoGradGuard ng;
  {
    auto m = load_causal_lm(test::fixture("tiny_gpt2"), torch::kDouble);
    m.model->eval();
    EXPECT_LT(max_abs(m.model->logits(ids), ref["logits"]), 1e-10);
    EXPECT_TRUE(m.load_report.unexpected.empty());
    // a right-padded row: its real positions are unchanged by the padding mask
    const auto masked = m.model->logits(ids, nullptr, ref["mask"]);
    EXPECT_LT(max_abs(masked[0], ref["masked_logits"][0]), 1e-10);
    EXPECT_LT(max_abs(masked[1].slice(0, 0, 6), ref["masked_logits"][1].slice(0, 0, 6)), 1e-10);
  }
  auto m = load_causal_lm(test::fixture("tiny_gpt2"));
  m.model->eval();
  const auto logits = m.model->logits(ids);
  EXPECT_EQ(logits.scalar_type(), torch::kFloat32);
  EXPECT_EQ(logits.sizes(), ref["logits"].sizes());
  EXPECT_LT(max_abs(logits, ref["logits"]), 1e-5 * ref["logits"].abs().max().item<double>());
  // parameter groups cover every parameter once, bottom to top
  auto groups = m.model->param_groups();
  ASSERT_EQ(groups.size(), 4u);
  EXPECT_EQ(groups.front().name, "embeddings");
  EXPECT_EQ(groups[1].name, "layer.0");
  EXPECT_EQ(groups.back().name, "head");
  size_t n = 0;
  for (const auto& g : groups) n += g.params.size();
  EXPECT_EQ(n, m.model->parameters().size());
}

TEST(Gpt2, ShardedCheckpointWithoutPrefixLoadsTheSameWeights) {
  auto ref = reference();
  auto m = load_causal_lm(test::fixture("tiny_gpt2_sharded"), torch::kDouble);
  m.model->eval();
  torch::NoGradGuard ng;
  EXPECT_LT(max_abs(m.model->logits(ref["ids"].to(torch::kLong)), ref["logits"]), 1e-10);
  // the legacy causal-mask buffers are reported, not loaded
  EXPECT_EQ(m.load_report.unexpected.size(), 4u);
  EXPECT_TRUE(std::find(m.load_report.unexpected.begin(), m.load_report.unexpected.end(), "h.0.attn.bias") != m.load_report.unexpected.end());
  // the byte-level BPE tokenizer beside it
  Tokenizer tok = Tokenizer::load(test::fixture("tiny_gpt2_sharded"));
  const std::string text = "the cat sat on the mat, naïvely!";
  EXPECT_EQ(tok.decode(tok.encode_ids(text)), text);
}

TEST(Gpt2, CachedDecodingEqualsFullForwardPasses) {
  auto ref = reference();
  auto m = load_causal_lm(test::fixture("tiny_gpt2"));
  m.model->eval();
  torch::NoGradGuard ng;
  const torch::Tensor ids = ref["ids"].to(torch::kLong);
  const auto full = m.model->logits(ids);
  // the first 4 tokens at once, then one token at a time through the cache
  KvCache cache;
  std::vector<torch::Tensor> parts{m.model->logits(ids.slice(1, 0, 4), &cache)};
  for (int64_t t = 4; t < ids.size(1); ++t) parts.push_back(m.model->logits(ids.slice(1, t, t + 1), &cache));
  EXPECT_EQ(cache.length(), ids.size(1));
  EXPECT_LT(max_abs(torch::cat(parts, 1), full), 1e-5 * full.abs().max().item<double>());
}

TEST(Gpt2, GreedyGenerationWithAndWithoutCacheEqualsTheReference) {
  auto ref = reference();
  auto m = load_causal_lm(test::fixture("tiny_gpt2"), torch::kDouble);
  const std::vector<int64_t> prompt = as_vector(ref["prompt"]), expected = as_vector(ref["greedy"]);
  GenerateOptions o;
  o.max_new_tokens = static_cast<int64_t>(expected.size());
  EXPECT_EQ(generate(*m.model, prompt, o), expected);
  o.use_cache = false;
  EXPECT_EQ(generate(*m.model, prompt, o), expected);
  // float32 too, token for token
  auto f = load_causal_lm(test::fixture("tiny_gpt2"));
  o.use_cache = true;
  EXPECT_EQ(generate(*f.model, prompt, o), expected);
  // a stop token ends generation after it; on_token can stop it too
  o.stop_ids = {expected[3]};
  auto stopped = generate(*f.model, prompt, o);
  ASSERT_FALSE(stopped.empty());
  EXPECT_EQ(stopped.back(), expected[3]);
  EXPECT_LE(stopped.size(), 4u);
  o.stop_ids.clear();
  o.on_token = [](int64_t, const std::vector<int64_t>& so_far) { return so_far.size() == 2; };
  EXPECT_EQ(generate(*f.model, prompt, o).size(), 2u);
}

// Several prompts generated together (the server's concurrent completions): each row's tokens equal
// generate() on its prompt alone, though the rows have different lengths (left padding), stop at different
// steps (max_new_tokens, a stop id, on_token) and sample with their own seeds; GPT-2 and Llama (RoPE).
TEST(Gpt2, BatchedGenerationEqualsOnePromptAtATime) {
  for (const std::string name : {"tiny_gpt2", "tiny_llama"}) {
    SCOPED_TRACE(name);
    auto m = load_causal_lm(test::fixture(name));
    torch::manual_seed(5);
    std::vector<GenerateJob> jobs;
    const std::vector<int64_t> lengths = {3, 9, 1, 6, 4};
    for (size_t i = 0; i < lengths.size(); ++i) {
      GenerateJob j;
      j.prompt = as_vector(torch::randint(1, m.config.vocab_size, {lengths[i]}, torch::kLong));
      j.options.max_new_tokens = 3 + 2 * static_cast<int64_t>(i);
      if (i == 3) j.options.temperature = 0.9, j.options.top_p = 0.9, j.options.seed = 11;
      jobs.push_back(j);
    }
    // row 1 stops at a token it is known to produce; row 4 stops by on_token after 2 tokens
    jobs[1].options.stop_ids = {generate(*m.model, jobs[1].prompt, jobs[1].options)[2]};
    jobs[4].options.on_token = [](int64_t, const std::vector<int64_t>& so_far) { return so_far.size() == 2; };
    const auto together = generate_batch(*m.model, jobs);
    ASSERT_EQ(together.size(), jobs.size());
    for (size_t i = 0; i < jobs.size(); ++i) EXPECT_EQ(together[i], generate(*m.model, jobs[i].prompt, jobs[i].options)) << "row " << i;
    EXPECT_LE(together[1].size(), 3u);
    EXPECT_EQ(together[4].size(), 2u);
    EXPECT_EQ(together[2].size(), 7u);
  }
}

TEST(Gpt2, SamplingIsSeededAndTheFiltersNarrowIt) {
  auto ref = reference();
  auto m = load_causal_lm(test::fixture("tiny_gpt2"));
  const std::vector<int64_t> prompt = as_vector(ref["prompt"]), greedy = as_vector(ref["greedy"]);
  GenerateOptions o;
  o.max_new_tokens = 12;
  o.temperature = 1.5;
  o.seed = 1;
  const auto a = generate(*m.model, prompt, o), b = generate(*m.model, prompt, o);
  EXPECT_EQ(a, b);
  o.seed = 2;
  EXPECT_NE(generate(*m.model, prompt, o), a);
  o.top_k = 1;  // only the most likely token survives: greedy
  EXPECT_EQ(generate(*m.model, prompt, o), greedy);
  o.top_k = 0;
  o.top_p = 1e-9;  // the nucleus is the single most likely token
  EXPECT_EQ(generate(*m.model, prompt, o), greedy);
  // repetition penalty as Hugging Face applies it: positive logits divided, negative multiplied
  std::mt19937_64 rng(0);
  GenerateOptions p;
  p.repetition_penalty = 2.0;
  EXPECT_EQ(next_token(torch::tensor({4.0, 3.0, -1.0}), {0}, p, rng), 1);  // 4 / 2 < 3
  EXPECT_EQ(next_token(torch::tensor({-1.0, -1.5, -3.0}), {0}, p, rng), 1);  // -1 * 2 < -1.5
}

TEST(Gpt2, BadCheckpointsAreRefusedNamingTheProblem) {
  const std::string dir = test::temp_dir("gpt2-bad");
  auto expect_error = [](const std::string& path, const std::string& needle) {
    try {
      load_causal_lm(path);
      ADD_FAILURE() << "loaded " << path;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  namespace fs = std::filesystem;
  const std::string src = test::fixture("tiny_gpt2");
  // a tensor missing
  fs::create_directories(dir + "/missing");
  fs::copy_file(src + "/config.json", dir + "/missing/config.json");
  auto tensors = load_safetensors(src + "/model.safetensors");
  tensors.erase("transformer.h.1.mlp.c_fc.weight");
  NamedTensors kept(tensors.begin(), tensors.end());
  save_safetensors(dir + "/missing/model.safetensors", kept);
  expect_error(dir + "/missing", "transformer.h.1.mlp.c_fc.weight");
  // heads that do not divide the width
  fs::create_directories(dir + "/heads");
  std::string cfg = read_file(src + "/config.json");
  cfg.replace(cfg.find("\"n_head\": 4"), 11, "\"n_head\": 5");
  write_atomic(dir + "/heads/config.json", cfg);
  fs::copy_file(src + "/model.safetensors", dir + "/heads/model.safetensors");
  expect_error(dir + "/heads", "n_head");
  // a truncated weights file
  fs::create_directories(dir + "/cut");
  fs::copy_file(src + "/config.json", dir + "/cut/config.json");
  const std::string bytes = read_file(src + "/model.safetensors");
  write_atomic(dir + "/cut/model.safetensors", bytes.substr(0, bytes.size() / 2));
  expect_error(dir + "/cut", "model.safetensors");
  expect_error(dir + "/nothing-here", "not found");
}

TEST(Gpt2, GenerateCommandContinuesAPromptAndStops) {
  const std::string cli = std::string(KOTSU_CLI) + " generate --model " + test::fixture("tiny_gpt2") + " --prompt 'the cat' --threads 1";
  int status = 0;
  const std::string greedy = test::run_command(cli + " --max-new-tokens 8 2>&1", &status);
  ASSERT_EQ(status, 0) << greedy;
  // the same tokens the library generates, decoded
  auto m = load_causal_lm(test::fixture("tiny_gpt2"));
  Tokenizer tok = Tokenizer::load(test::fixture("tiny_gpt2"));
  GenerateOptions o;
  o.max_new_tokens = 8;
  o.stop_ids = {m.config.eos_token_id};
  EXPECT_EQ(greedy, tok.decode(generate(*m.model, tok.encode_ids("the cat"), o)) + "\n");
  EXPECT_EQ(test::run_command(cli + " --max-new-tokens 8 --no-cache 2>&1", &status), greedy);
  // a stop string cuts the text before it
  ASSERT_GE(greedy.size(), 3u);
  const std::string stop = greedy.substr(1, 1);
  const std::string cut = test::run_command(cli + " --max-new-tokens 8 --stop '" + stop + "' 2>&1", &status);
  EXPECT_EQ(cut, greedy.substr(0, greedy.find(stop)) + "\n");
  // bad values are one-line errors naming the option
  const std::string bad = test::run_command(cli + " --top-p 0 2>&1", &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(bad.find("top_p"), std::string::npos) << bad;
}

TEST(Gpt2, PerplexityEqualsTheSlidingWindowReference) {
  auto ref = reference();
  auto m = load_causal_lm(test::fixture("tiny_gpt2"), torch::kDouble);
  const std::vector<int64_t> text = as_vector(ref["ppl_text"]);
  const auto cases = ref["ppl"];
  for (int64_t i = 0; i < cases.size(0); ++i) {
    const auto max_len = static_cast<int64_t>(cases[i][0].item<double>()), stride = static_cast<int64_t>(cases[i][1].item<double>());
    const Perplexity p = evaluate_perplexity(*m.model, text, max_len, stride);
    EXPECT_EQ(p.tokens, static_cast<int64_t>(cases[i][3].item<double>())) << max_len << "/" << stride;
    EXPECT_NEAR(p.nll, cases[i][2].item<double>(), 1e-8) << max_len << "/" << stride;
    EXPECT_NEAR(p.perplexity(), std::exp(cases[i][2].item<double>() / cases[i][3].item<double>()), 1e-8);
  }
  // overlapping windows give every scored token more context than disjoint ones: a different number
  EXPECT_NE(evaluate_perplexity(*m.model, text, 16, 8).nll, evaluate_perplexity(*m.model, text, 16, 16).nll);
  EXPECT_THROW(evaluate_perplexity(*m.model, text, 1000, 8), Error);  // longer than the model's positions
  EXPECT_THROW(evaluate_perplexity(*m.model, {5}, 16, 8), Error);
}

TEST(Gpt2, PerplexityCommandScoresATextFile) {
  const std::string dir = test::temp_dir("ppl");
  const std::string text = "the cat sat on the mat and then the cat ran away from the dog in the rain\n";
  write_atomic(dir + "/held-out.txt", text);
  int status = 0;
  const std::string out = test::run_command(std::string(KOTSU_CLI) + " perplexity --model " + test::fixture("tiny_gpt2") + " --data " + dir +
                                                "/held-out.txt --max-len 16 --stride 4 --json --threads 1 2>&1",
                                            &status);
  ASSERT_EQ(status, 0) << out;
  const auto j = nlohmann::json::parse(out);
  auto m = load_causal_lm(test::fixture("tiny_gpt2"));
  const Perplexity p = evaluate_perplexity(*m.model, Tokenizer::load(test::fixture("tiny_gpt2")).encode_ids(text), 16, 4);
  EXPECT_EQ(j["tokens"], p.tokens);
  EXPECT_NEAR(j["perplexity"].get<double>(), p.perplexity(), 1e-6 * p.perplexity());
  write_atomic(dir + "/one.txt", "a");
  EXPECT_NE(test::run_command(std::string(KOTSU_CLI) + " perplexity --model " + test::fixture("tiny_gpt2") + " --data " + dir + "/one.txt 2>&1", &status)
                .find("fewer than two tokens"),
            std::string::npos);
  EXPECT_NE(status, 0);
}
