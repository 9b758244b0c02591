// bench/train_step: milliseconds per BERT-classifier training step (forward, loss, backward, clip, AdamW)
// for kotsu's training path (hash dropout, fused AdamW, sparse embedding rows) and for the same model in
// plain libtorch (torch::dropout, dense gradients, torch::optim::AdamW + clip_grad_norm_). Batches draw
// token ids from `--active` distinct ids, as the texts of a small dataset do. Prints one JSON line.
// With --bf16 the forward pass runs under bf16 autocast (as the peer's torch.autocast does).
// With --head-epoch: seconds per head-strategy epoch over N examples with the feature cache vs without.
#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>

#include "kotsu/core/runtime.hpp"
#include "kotsu/models/bert.hpp"
#include "kotsu/models/ops.hpp"
#include "kotsu/train/adamw.hpp"
#include "kotsu/train/precision.hpp"

using namespace kotsu;
using clk = std::chrono::steady_clock;

namespace {

struct Args {
  int64_t hidden = 128, heads = 2, layers = 2, batch = 16, seq = 128, steps = 20, warmup = 5, active = 4000;
  int64_t vocab = 30522, examples = 512, epochs = 3;
  int threads = 2;
  std::string variant = "kotsu";
  bool head_epoch = false;
  bool bf16 = false;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

bool no_decay(const std::string& n) { return n.find("bias") != std::string::npos || n.find("LayerNorm") != std::string::npos; }

EncoderConfig config_of(const Args& a) {
  EncoderConfig c;
  c.vocab_size = a.vocab;
  c.hidden_size = a.hidden;
  c.num_hidden_layers = a.layers;
  c.num_attention_heads = a.heads;
  c.intermediate_size = 4 * a.hidden;
  c.max_position_embeddings = 512;
  return c;
}

torch::Tensor draw_ids(const torch::Tensor& active, int64_t b, int64_t t) {
  return active.index_select(0, torch::randint(0, active.size(0), {b * t}, torch::kLong)).view({b, t});
}

int train_step_bench(const Args& a) {
  BertClassifier m(config_of(a), 2);
  m.init_all(0);
  m.train();
  torch::manual_seed(1);
  auto active = torch::randperm(a.vocab - 1000, torch::kLong).slice(0, 0, a.active) + 1000;
  const bool plain = a.variant == "libtorch";
  use_torch_dropout(plain);
  std::unique_ptr<torch::optim::AdamW> ref;
  std::unique_ptr<FusedAdamW> fused;
  if (plain) {
    std::vector<torch::Tensor> d, p;
    for (auto& kv : m.named_parameters()) (no_decay(kv.key()) ? p : d).push_back(kv.value());
    std::vector<torch::optim::OptimizerParamGroup> g;
    g.emplace_back(d, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(2e-5).weight_decay(0.01)));
    g.emplace_back(p, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(2e-5).weight_decay(0.0)));
    ref = std::make_unique<torch::optim::AdamW>(g, torch::optim::AdamWOptions(2e-5));
  } else {
    auto sparse = m.use_sparse_embedding_grads();
    FusedAdamW::Group d{{}, 0.01}, p{{}, 0.0};
    for (auto& kv : m.named_parameters()) (no_decay(kv.key()) ? p : d).params.push_back(kv.value());
    fused = std::make_unique<FusedAdamW>(std::vector<FusedAdamW::Group>{d, p}, sparse);
  }
  std::vector<double> times;
  for (int64_t s = 0; s < a.warmup + a.steps; ++s) {
    auto ids = draw_ids(active, a.batch, a.seq);
    TextBatch b{ids, torch::ones({a.batch, a.seq}, torch::kLong), {}, torch::randint(0, 2, {a.batch}, torch::kLong)};
    auto t0 = clk::now();
    if (fused) fused->prepare(b.input_ids);
    torch::Tensor logits;
    {
      Bf16Autocast autocast(a.bf16, torch::kCPU);
      logits = m.logits(b);
    }
    auto loss = torch::nn::functional::cross_entropy(logits.to(torch::kFloat), b.labels);
    loss.backward();
    if (plain) {
      torch::nn::utils::clip_grad_norm_(m.parameters(), 1.0);
      ref->step();
      ref->zero_grad();
    } else {
      fused->step(2e-5, 1.0);
    }
    double ms = std::chrono::duration<double, std::milli>(clk::now() - t0).count();
    if (s >= a.warmup) times.push_back(ms);
  }
  fmt::print("{{\"variant\": \"{}\", \"ms\": {:.2f}, \"bf16\": {}, \"threads\": {}}}\n", a.variant, median(times), a.bf16,
             runtime_threads());
  return 0;
}

// Head strategy: an epoch over N examples trains only the classifier. Without a cache every epoch runs
// the frozen encoder forward (no grad) first; with the cache the encoder ran once, before epoch 1.
int head_epoch_bench(const Args& a) {
  BertClassifier m(config_of(a), 2);
  m.init_all(0);
  for (auto& p : m.parameters()) p.set_requires_grad(false);
  std::vector<torch::Tensor> head;
  for (auto& g : m.param_groups())
    if (g.name == "head")
      for (auto& [n, t] : g.params) {
        t.set_requires_grad(true);
        head.push_back(t);
      }
  torch::manual_seed(1);
  auto active = torch::randperm(a.vocab - 1000, torch::kLong).slice(0, 0, a.active) + 1000;
  const int64_t nb = a.examples / a.batch;
  std::vector<TextBatch> batches;
  for (int64_t i = 0; i < nb; ++i)
    batches.push_back({draw_ids(active, a.batch, a.seq), torch::ones({a.batch, a.seq}, torch::kLong), {},
                       torch::randint(0, 2, {a.batch}, torch::kLong)});
  FusedAdamW opt({{head, 0.01}}, {});
  auto head_step = [&](const torch::Tensor& f, const torch::Tensor& y) {
    m.train();
    torch::nn::functional::cross_entropy(m.head(f), y).backward();
    opt.step(1e-3, 1.0);
  };
  // without cache
  std::vector<double> uncached;
  for (int64_t e = 0; e < a.epochs; ++e) {
    auto t0 = clk::now();
    for (auto& b : batches) {
      torch::Tensor f;
      {
        torch::NoGradGuard ng;
        m.eval();
        f = m.features(b);
      }
      head_step(f, b.labels);
    }
    uncached.push_back(std::chrono::duration<double>(clk::now() - t0).count());
  }
  // with cache: encode once, then epochs over cached features
  auto t0 = clk::now();
  std::vector<torch::Tensor> feats;
  {
    torch::NoGradGuard ng;
    m.eval();
    for (auto& b : batches) feats.push_back(m.features(b));
  }
  double encode_once = std::chrono::duration<double>(clk::now() - t0).count();
  std::vector<double> cached;
  for (int64_t e = 0; e < a.epochs; ++e) {
    auto t1 = clk::now();
    for (size_t i = 0; i < batches.size(); ++i) head_step(feats[i], batches[i].labels);
    cached.push_back(std::chrono::duration<double>(clk::now() - t1).count());
  }
  fmt::print("{{\"uncached_epoch_s\": {:.4f}, \"cached_epoch_s\": {:.5f}, \"encode_once_s\": {:.4f}, \"examples\": {}}}\n",
             median(uncached), median(cached), encode_once, nb * a.batch);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (k == "--hidden") a.hidden = std::stoll(next());
    else if (k == "--heads") a.heads = std::stoll(next());
    else if (k == "--layers") a.layers = std::stoll(next());
    else if (k == "--batch") a.batch = std::stoll(next());
    else if (k == "--seq") a.seq = std::stoll(next());
    else if (k == "--steps") a.steps = std::stoll(next());
    else if (k == "--warmup") a.warmup = std::stoll(next());
    else if (k == "--active") a.active = std::stoll(next());
    else if (k == "--examples") a.examples = std::stoll(next());
    else if (k == "--epochs") a.epochs = std::stoll(next());
    else if (k == "--threads") a.threads = std::stoi(next());
    else if (k == "--variant") a.variant = next();
    else if (k == "--head-epoch") a.head_epoch = true;
    else if (k == "--bf16") a.bf16 = true;
    else {
      fmt::print(stderr, "unknown argument {}\n", k);
      return 2;
    }
  }
  runtime_init(a.threads);
  return a.head_epoch ? head_epoch_bench(a) : train_step_bench(a);
}
