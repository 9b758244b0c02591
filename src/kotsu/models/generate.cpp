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

std::vector<std::vector<int64_t>> generate_batch(CausalLm& model, const std::vector<GenerateJob>& jobs) {
  const size_t n = jobs.size();
  std::vector<std::vector<int64_t>> out(n);
  for (const auto& j : jobs)
    if (j.prompt.empty()) throw Error("generate", "prompt", "is empty (no token to continue)");
  if (n == 1) {
    out[0] = generate(model, jobs[0].prompt, jobs[0].options);
    return out;
  }
  torch::NoGradGuard ng;
  const bool was_training = model.is_training();
  model.eval();
  const auto device = model.parameters().front().device();
  const int64_t max_pos = model.config().max_positions;
  std::vector<std::mt19937_64> rng;
  std::vector<std::vector<int64_t>> context;
  std::vector<size_t> active;  // batch row -> job
  for (size_t i = 0; i < n; ++i) {
    rng.emplace_back(jobs[i].options.seed);
    context.push_back(jobs[i].prompt);
    if (static_cast<int64_t>(jobs[i].prompt.size()) < max_pos && jobs[i].options.max_new_tokens > 0) active.push_back(i);
  }
  if (active.empty()) return out;
  int64_t L = 0;
  for (size_t i : active) L = std::max<int64_t>(L, static_cast<int64_t>(jobs[i].prompt.size()));
  const auto A = static_cast<int64_t>(active.size());
  torch::Tensor ids = torch::zeros({A, L}, torch::kLong), mask = torch::zeros({A, L}, torch::kLong), pos = torch::zeros({A, L}, torch::kLong);
  for (int64_t r = 0; r < A; ++r) {
    const auto& p = jobs[active[static_cast<size_t>(r)]].prompt;
    const auto len = static_cast<int64_t>(p.size());
    ids[r].narrow(0, L - len, len).copy_(torch::tensor(p, torch::kLong));
    mask[r].narrow(0, L - len, len).fill_(1);
    pos[r].narrow(0, L - len, len).copy_(torch::arange(len, torch::kLong));
  }
  KvCache cache;
  torch::Tensor input = ids;
  while (!active.empty()) {
    const torch::Tensor logits = model.logits(input.to(device), &cache, mask.to(device), pos.to(device));
    const torch::Tensor last = logits.select(1, logits.size(1) - 1).to(torch::kCPU);
    std::vector<int64_t> keep, tokens;
    for (size_t r = 0; r < active.size(); ++r) {
      const size_t i = active[r];
      const GenerateOptions& o = jobs[i].options;
      const int64_t t = next_token(last[static_cast<int64_t>(r)], context[i], o, rng[i]);
      out[i].push_back(t);
      context[i].push_back(t);
      const bool stop = std::find(o.stop_ids.begin(), o.stop_ids.end(), t) != o.stop_ids.end() || (o.on_token && o.on_token(t, out[i])) ||
                        static_cast<int64_t>(out[i].size()) >= o.max_new_tokens || static_cast<int64_t>(context[i].size()) >= max_pos;
      if (!stop) keep.push_back(static_cast<int64_t>(r)), tokens.push_back(t);
    }
    if (keep.empty()) break;
    if (keep.size() < active.size()) {  // finished rows leave; so do the cache columns only their padding used
      const torch::Tensor rows = torch::tensor(keep, torch::kLong);
      mask = mask.index_select(0, rows);
      const int64_t first = mask.sum(0).nonzero().min().item<int64_t>();
      mask = mask.narrow(1, first, mask.size(1) - first);
      const torch::Tensor drows = rows.to(device);
      for (size_t l = 0; l < cache.k.size(); ++l) {
        cache.k[l] = cache.k[l].index_select(0, drows).narrow(2, first, cache.k[l].size(2) - first);
        cache.v[l] = cache.v[l].index_select(0, drows).narrow(2, first, cache.v[l].size(2) - first);
      }
      std::vector<size_t> still;
      for (int64_t r : keep) still.push_back(active[static_cast<size_t>(r)]);
      active = std::move(still);
    }
    const auto B = static_cast<int64_t>(active.size());
    input = torch::tensor(tokens, torch::kLong).view({B, 1});
    mask = torch::cat({mask, torch::ones({B, 1}, torch::kLong)}, 1);
    std::vector<int64_t> next;
    for (size_t i : active) next.push_back(static_cast<int64_t>(context[i].size()) - 1);
    pos = torch::tensor(next, torch::kLong).view({B, 1});
  }
  model.train(was_training);
  return out;
}

}  // namespace kotsu
