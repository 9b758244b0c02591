#include "kotsu/models/generate.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <random>
#include <set>

#include "kotsu/core/error.hpp"

namespace kotsu {

int64_t next_token(torch::Tensor logits, const std::vector<int64_t>& context, const GenerateOptions& o, std::mt19937_64& rng) {
  logits = logits.to(torch::kDouble).contiguous().clone();
  double* s = logits.data_ptr<double>();
  const int64_t V = logits.numel();
  if (o.repetition_penalty != 1.0)
    for (int64_t t : std::set<int64_t>(context.begin(), context.end()))
      if (t >= 0 && t < V) s[t] = s[t] < 0 ? s[t] * o.repetition_penalty : s[t] / o.repetition_penalty;
  if (o.temperature <= 0) return logits.argmax().item<int64_t>();
  logits.div_(o.temperature);
  const double neg_inf = -std::numeric_limits<double>::infinity();
  if (o.top_k > 0 && o.top_k < V) {
    const double kth = std::get<0>(logits.topk(o.top_k)).min().item<double>();
    logits.masked_fill_(logits < kth, neg_inf);
  }
  if (o.top_p < 1.0) {  // as TopPLogitsWarper: drop the low tail whose probability mass is <= 1 - p
    auto [sorted, idx] = logits.sort(/*dim=*/0, /*descending=*/false);
    auto cum = sorted.softmax(0).cumsum(0);
    auto remove = cum <= (1.0 - o.top_p);
    remove[V - 1] = false;  // keep at least one
    logits.index_put_({idx.masked_select(remove)}, neg_inf);
  }
  const auto p = logits.softmax(0);
  const double* pr = p.data_ptr<double>();
  const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  double acc = 0;
  int64_t last = 0;
  for (int64_t i = 0; i < V; ++i) {
    if (pr[i] <= 0) continue;
    acc += pr[i];
    last = i;
    if (u < acc) return i;
  }
  return last;  // rounding left u above the total
}

std::vector<int64_t> generate(CausalLm& model, const std::vector<int64_t>& prompt, const GenerateOptions& o) {
  if (prompt.empty()) throw Error("generate", "prompt", "is empty (no token to continue)");
  torch::NoGradGuard ng;
  const bool was_training = model.is_training();
  model.eval();
  const auto device = model.parameters().front().device();
  std::mt19937_64 rng(o.seed);
  std::vector<int64_t> context = prompt, out;
  KvCache cache;
  torch::Tensor input = torch::tensor(prompt, torch::kLong).view({1, -1}).to(device);
  for (int64_t step = 0; step < o.max_new_tokens; ++step) {
    if (static_cast<int64_t>(context.size()) >= model.config().max_positions) break;
    torch::Tensor logits = o.use_cache ? model.logits(input, &cache) : model.logits(torch::tensor(context, torch::kLong).view({1, -1}).to(device));
    const int64_t t = next_token(logits[0][logits.size(1) - 1].cpu(), context, o, rng);
    out.push_back(t);
    context.push_back(t);
    if (std::find(o.stop_ids.begin(), o.stop_ids.end(), t) != o.stop_ids.end()) break;
    if (o.on_token && o.on_token(t, out)) break;
    input = torch::full({1, 1}, t, torch::TensorOptions().dtype(torch::kLong).device(device));
  }
  model.train(was_training);
  return out;
}

}  // namespace kotsu
