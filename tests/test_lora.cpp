// models/lora and models/dense: LoRA adapters in PEFT's layout on the tiny Llama and GPT-2 checkpoints,
// against float64 references of the adapted models (fixtures/make_peft_adapters.py).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <set>

#include "kotsu/core/error.hpp"
#include "kotsu/io/json_file.hpp"
#include "kotsu/io/safetensors.hpp"
#include "kotsu/models/causal_lm.hpp"
#include "kotsu/models/lora.hpp"
#include "test_util.hpp"

using namespace kotsu;

namespace {

double max_abs(const torch::Tensor& a, const torch::Tensor& b) { return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>(); }

std::set<std::string> trainable(torch::nn::Module& m) {
  std::set<std::string> out;
  for (const auto& p : m.named_parameters(true))
    if (p.value().requires_grad()) out.insert(p.key());
  return out;
}

}  // namespace

TEST(Lora, PeftAdaptersLoadAndComputeThePeftForward) {
  for (const std::string name : {"tiny_llama", "tiny_gpt2"}) {
    SCOPED_TRACE(name);
    auto ref = load_safetensors(test::fixture(name + "_lora_ref.safetensors"));
    const torch::Tensor ids = ref["ids"].to(torch::kLong);
    auto m = load_causal_lm(test::fixture(name), torch::kDouble);
    const LoraOptions o = load_peft_adapter(*m.model, test::fixture(name + "_lora"));
    m.model->eval();
    EXPECT_LT(max_abs(m.model->logits(ids), ref["logits"]), 1e-9);
    // only the adapters train: every base parameter is frozen
    const auto t = trainable(*m.model);
    EXPECT_EQ(t.size(), name == "tiny_llama" ? 8u : 4u) << "2 layers x (q_proj, v_proj | c_attn) x (lora_A, lora_B)";
    for (const auto& n : t) EXPECT_TRUE(n.find(".lora_A.weight") != std::string::npos || n.find(".lora_B.weight") != std::string::npos) << n;
    if (name == "tiny_gpt2") {
      EXPECT_TRUE(o.shape.rslora);
      EXPECT_EQ(o.target_modules, nlohmann::json::array({"c_attn"}));
    }
    // the float32 model with the adapter: within 1e-5 of the reference
    auto m32 = load_causal_lm(test::fixture(name));
    load_peft_adapter(*m32.model, test::fixture(name + "_lora"));
    m32.model->eval();
    torch::NoGradGuard ng;
    const double scale = ref["logits"].abs().max().item<double>();
    EXPECT_LT(max_abs(m32.model->logits(ids), ref["logits"]), 1e-5 * scale);
  }
}

TEST(Lora, BaseWeightsGetNoGradientsAndAdaptersDo) {
  auto m = load_causal_lm(test::fixture("tiny_llama"));
  LoraOptions o;
  apply_lora(*m.model, o);
  m.model->train();
  auto ids = torch::randint(0, m.config.vocab_size, {2, 7}, torch::kLong);
  m.model->logits(ids).logsumexp(-1).sum().backward();
  for (const auto& p : m.model->named_parameters(true)) {
    const bool adapter = p.key().find(".lora_") != std::string::npos;
    EXPECT_EQ(p.value().grad().defined(), adapter) << p.key();
  }
  // lora_B starts at zero: lora_A gets no gradient signal only through B; B's gradient is non-zero
  const auto b = m.model->named_parameters(true)["model.layers.0.self_attn.q_proj.lora_B.weight"];
  EXPECT_GT(b.grad().abs().max().item<double>(), 0);
}

// What --bf16 does for a LoRA run: the frozen base stays in bf16 (half the memory), the adapters are float32
// and get float32 gradients, and the logits stay close to the float32 model's.
TEST(Lora, Bf16BaseKeepsFloat32AdaptersAndCloseLogits) {
  torch::manual_seed(3);
  auto f32 = load_causal_lm(test::fixture("tiny_llama"));
  auto b16 = load_causal_lm(test::fixture("tiny_llama"), torch::kBFloat16);
  LoraOptions o;
  o.shape.dropout = 0;
  apply_lora(*f32.model, o);
  apply_lora(*b16.model, o);  // same seed: the same lora_A draws
  // a non-zero lora_B so that the branch contributes
  for (auto* m : {&f32, &b16}) {
    torch::NoGradGuard ng;
    for (auto& p : m->model->named_parameters(true))
      if (p.key().find("lora_B") != std::string::npos) p.value().fill_(0.05);
  }
  auto ids = torch::randint(0, f32.config.vocab_size, {2, 9}, torch::kLong);
  const auto want = f32.model->logits(ids).detach();
  b16.model->train();
  const auto got = b16.model->logits(ids);
  EXPECT_LT((got.to(torch::kFloat) - want).abs().max().item<double>(), 0.05 * want.abs().max().item<double>());
  got.to(torch::kFloat).logsumexp(-1).sum().backward();
  for (const auto& p : b16.model->named_parameters(true)) {
    const bool adapter = p.key().find(".lora_") != std::string::npos;
    EXPECT_EQ(p.value().scalar_type(), adapter ? torch::kFloat : torch::kBFloat16) << p.key();
    EXPECT_EQ(p.value().grad().defined(), adapter) << p.key();
    if (adapter) {
      EXPECT_EQ(p.value().grad().scalar_type(), torch::kFloat) << p.key();
      EXPECT_GT(p.value().grad().abs().max().item<double>(), 0) << p.key();
    }
  }
}

TEST(Lora, SaveReloadAndMergeGiveTheSameLogits) {
  const std::string dir = test::temp_dir("lora-save");
  auto m = load_causal_lm(test::fixture("tiny_llama"));
  LoraOptions o;
  o.shape = {4, 8, 0.0, false};
  o.target_modules = "all-linear";
  o.seed = 3;
  const auto adapted = apply_lora(*m.model, o);
  EXPECT_EQ(adapted.size(), 2u * 7u);  // q, k, v, o, gate, up, down in each of 2 layers
  {
    torch::NoGradGuard ng;
    for (const auto& p : m.model->named_parameters(true))
      if (p.key().find(".lora_B.") != std::string::npos) p.value().normal_(0, 0.2);  // as if trained
  }
  m.model->eval();
  auto ids = torch::randint(0, m.config.vocab_size, {2, 9}, torch::kLong);
  torch::NoGradGuard ng;
  const auto before = m.model->logits(ids);
  EXPECT_GT(max_abs(before, load_causal_lm(test::fixture("tiny_llama")).model->logits(ids)), 1e-3) << "the adapter changes the model";
  save_peft_adapter(*m.model, o, dir, test::fixture("tiny_llama"), "CAUSAL_LM");
  // PEFT's layout: names, shapes, config keys
  const auto saved = load_safetensors(dir + "/adapter_model.safetensors");
  EXPECT_EQ(saved.size(), 2u * 7u * 2u);
  const auto& qa = saved.at("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
  const auto& db = saved.at("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight");
  EXPECT_EQ(qa.sizes(), (std::vector<int64_t>{4, m.config.hidden_size}));
  EXPECT_EQ(db.sizes(), (std::vector<int64_t>{m.config.hidden_size, 4}));
  const auto cfg = read_json(dir + "/adapter_config.json");
  EXPECT_EQ(cfg["peft_type"], "LORA");
  EXPECT_EQ(cfg["task_type"], "CAUSAL_LM");
  EXPECT_EQ(cfg["r"], 4);
  EXPECT_EQ(cfg["lora_alpha"], 8);
  EXPECT_EQ(cfg["target_modules"], "all-linear");
  EXPECT_EQ(cfg["bias"], "none");
  EXPECT_EQ(cfg["fan_in_fan_out"], false);
  EXPECT_EQ(cfg["base_model_name_or_path"], test::fixture("tiny_llama"));
  // a fresh base model with the saved adapter: the same logits
  auto again = load_causal_lm(test::fixture("tiny_llama"));
  load_peft_adapter(*again.model, dir);
  again.model->eval();
  EXPECT_LT(max_abs(again.model->logits(ids), before), 1e-6);
  // merged into the base weights: the same function with no adapter left
  merge_lora(*again.model);
  for (const auto& p : again.model->named_parameters(true)) EXPECT_EQ(p.key().find("lora_"), std::string::npos) << p.key();
  EXPECT_LT(max_abs(again.model->logits(ids), before), 1e-5);
  // GPT-2's transposed Conv1D weights merge too
  auto g = load_causal_lm(test::fixture("tiny_gpt2"));
  load_peft_adapter(*g.model, test::fixture("tiny_gpt2_lora"));
  g.model->eval();
  const auto gb = g.model->logits(ids.remainder(g.config.vocab_size));
  merge_lora(*g.model);
  EXPECT_LT(max_abs(g.model->logits(ids.remainder(g.config.vocab_size)), gb), 1e-5 * gb.abs().max().item<double>());
}

TEST(Lora, TargetsChooseLayersAsPeftDoes) {
  auto m = load_causal_lm(test::fixture("tiny_llama"));
  LoraOptions o;
  o.target_modules = R"(model\.layers\.1\.self_attn\.(q|o)_proj)";  // a string: a regular expression over the full name
  EXPECT_EQ(apply_lora(*m.model, o), (std::vector<std::string>{"model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.o_proj"}));
  auto m2 = load_causal_lm(test::fixture("tiny_llama"));
  o.target_modules = nlohmann::json::array({"query", "value"});  // BERT's names on a Llama: an error listing the Llama's layers
  try {
    apply_lora(*m2.model, o);
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("target_modules"), std::string::npos) << what;
    EXPECT_NE(what.find("q_proj"), std::string::npos) << what;
  }
}

TEST(Lora, BadAdapterFilesAreRefusedNamingTheField) {
  const std::string dir = test::temp_dir("lora-bad");
  auto write_cfg = [&](const std::string& key, const nlohmann::json& value) {
    auto c = read_json(test::fixture("tiny_llama_lora/adapter_config.json"));
    c[key] = value;
    std::filesystem::copy_file(test::fixture("tiny_llama_lora/adapter_model.safetensors"), dir + "/adapter_model.safetensors",
                               std::filesystem::copy_options::overwrite_existing);
    std::ofstream(dir + "/adapter_config.json") << c.dump();
  };
  for (const auto& [key, value] : std::vector<std::pair<std::string, nlohmann::json>>{
           {"peft_type", "IA3"}, {"use_dora", true}, {"bias", "all"}, {"rank_pattern", {{"q_proj", 8}}}, {"r", 8}}) {
    SCOPED_TRACE(key);
    write_cfg(key, value);
    auto m = load_causal_lm(test::fixture("tiny_llama"));
    try {
      load_peft_adapter(*m.model, dir);
      FAIL() << "no error";
    } catch (const Error& e) {
      // r 8 makes the stored [4, H] tensors the wrong shape: named with the tensor
      EXPECT_NE(std::string(e.what()).find(key == "r" ? "lora_A.weight" : key), std::string::npos) << e.what();
    }
  }
  // an adapter for another model
  auto g = load_causal_lm(test::fixture("tiny_gpt2"));
  EXPECT_THROW(load_peft_adapter(*g.model, test::fixture("tiny_llama_lora")), Error);
}
