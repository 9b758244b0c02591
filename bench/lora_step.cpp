// bench/lora_step: tokens per second of a LoRA training step on a Llama-style causal LM of about 100M
// parameters with random weights (hidden 768, 12 layers, 12 heads, SwiGLU 2048, vocabulary 16000, tied
// embeddings): rank 8 adapters on q_proj and v_proj (alpha 16, dropout 0.05), batch 4 x 256 tokens,
// next-token loss on every token, backward, AdamW on the adapters. --bf16 keeps the frozen base in bf16
// (adapters float32). Prints one JSON line; the peer is bench/peer_lora_step.py (the same model and step in
// PyTorch with a hand-written LoRA layer), driven by bench/run_lora_step.py, which also reads peak RSS.
// usage: bench_lora_step [--steps 3] [--threads 2] [--bf16] [--seq 256] [--batch 4]
#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>

#include "kotsu/core/runtime.hpp"
#include "kotsu/data/lm_data.hpp"
#include "kotsu/models/causal_lm.hpp"
#include "kotsu/models/lora.hpp"
#include "kotsu/train/adamw.hpp"

using namespace kotsu;
using clk = std::chrono::steady_clock;

int main(int argc, char** argv) {
  int64_t steps = 3, seq = 256, batch = 4;
  int threads = 2;
  bool bf16 = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--steps" && i + 1 < argc) steps = std::stoll(argv[++i]);
    else if (a == "--threads" && i + 1 < argc) threads = std::stoi(argv[++i]);
    else if (a == "--seq" && i + 1 < argc) seq = std::stoll(argv[++i]);
    else if (a == "--batch" && i + 1 < argc) batch = std::stoll(argv[++i]);
    else if (a == "--bf16") bf16 = true;
  }
  runtime_init(threads);
  CausalLmConfig c;
  c.model_type = "llama";
  c.vocab_size = 16000;
  c.hidden_size = 768;
  c.num_layers = 12;
  c.num_heads = 12;
  c.num_kv_heads = 12;
  c.intermediate_size = 2048;
  c.max_positions = 1024;
  c.activation = "silu";
  c.norm_eps = 1e-6;
  c.tie_word_embeddings = true;
  c.attn_dropout = 0;
  torch::manual_seed(0);
  auto model = make_causal_lm(c);
  if (bf16) model->to(torch::kBFloat16);
  LoraOptions lo;
  lo.shape = {8, 16, 0.05, false};
  lo.target_modules = nlohmann::json::array({"q_proj", "v_proj"});
  apply_lora(*model, lo);
  int64_t total = 0, trainable = 0;
  std::vector<torch::Tensor> params;
  for (auto& p : model->parameters()) {
    total += p.numel();
    if (p.requires_grad()) trainable += p.numel(), params.push_back(p);
  }
  FusedAdamW opt({{params, 0.01}}, {});
  model->train();
  const auto ids = torch::randint(0, c.vocab_size, {batch, seq}, torch::kLong);
  auto labels = torch::full({batch, seq}, -100, torch::kLong);
  labels.slice(1, 0, seq - 1).copy_(ids.slice(1, 1, seq));
  std::vector<double> times;
  for (int64_t s = 0; s < steps + 1; ++s) {  // one warm-up step
    const auto t = clk::now();
    const auto loss = lm_loss_sum(model->logits(ids), labels) / static_cast<double>(batch * (seq - 1));
    loss.backward();
    opt.step(1e-4, 1.0);
    if (s >= 1) times.push_back(std::chrono::duration<double>(clk::now() - t).count());
  }
  std::sort(times.begin(), times.end());
  const double med = times[times.size() / 2];
  fmt::print("{{\"variant\": \"kotsu\", \"bf16\": {}, \"parameters\": {}, \"trainable\": {}, \"seconds_per_step\": {:.3f}, \"tokens_per_second\": {:.1f}}}\n",
             bf16 ? "true" : "false", total, trainable, med, static_cast<double>(batch * seq) / med);
  return 0;
}
