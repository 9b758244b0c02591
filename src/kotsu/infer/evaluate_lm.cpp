#include "kotsu/infer/evaluate_lm.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "kotsu/core/error.hpp"

namespace kotsu {

double Perplexity::perplexity() const { return std::exp(mean_nll()); }

Perplexity evaluate_perplexity(CausalLm& model, const std::vector<int64_t>& ids, int64_t max_len, int64_t stride) {
  const int64_t n = static_cast<int64_t>(ids.size());
  if (n < 2) throw Error("perplexity", "data", "needs at least two tokens");
  if (max_len < 2 || max_len > model.config().max_positions)
    throw Error("perplexity", "max_len", "must be in [2, " + std::to_string(model.config().max_positions) + "] (the model's positions)");
  if (stride < 1 || stride > max_len) throw Error("perplexity", "stride", "must be in [1, max_len]");
  torch::NoGradGuard ng;
  const bool was_training = model.is_training();
  model.eval();
  const auto device = model.parameters().front().device();
  const torch::Tensor all = torch::tensor(ids, torch::kLong);
  Perplexity out;
  int64_t scored_until = 1;  // tokens [1, scored_until) are scored; token 0 has no context
  for (int64_t begin = 0; scored_until < n; begin += stride) {
    const int64_t end = std::min(begin + max_len, n);
    const torch::Tensor window = all.slice(0, begin, end).view({1, -1}).to(device);
    const torch::Tensor logp = torch::log_softmax(model.logits(window).to(torch::kDouble)[0], -1);  // [len, V]
    // position p of the window predicts token begin + p + 1; score the ones from scored_until on
    // (with stride == max_len the windows do not overlap: a window's first token has no context and is skipped)
    const int64_t first = std::max<int64_t>(scored_until - begin - 1, 0), last = end - begin - 1;
    const torch::Tensor targets = all.slice(0, begin + first + 1, end).to(device);
    out.nll -= logp.slice(0, first, last).gather(1, targets.view({-1, 1})).sum().item<double>();
    out.tokens += last - first;
    ++out.windows;
    scored_until = end;
  }
  model.train(was_training);
  return out;
}

}  // namespace kotsu
