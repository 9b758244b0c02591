#include "kotsu/infer/predict.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <numeric>

namespace kotsu {

namespace {
template <class F>
torch::Tensor run_sorted(TextClassifier& model, const EncodedTexts& e, int64_t batch_size, const torch::Device& device, F fn) {
  const size_t n = e.enc.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return e.enc[a].ids.size() < e.enc[b].ids.size(); });
  const bool was_training = model.is_training();
  model.eval();
  torch::NoGradGuard ng;
  torch::Tensor out;
  for (size_t s = 0; s < n; s += static_cast<size_t>(batch_size)) {
    std::vector<size_t> idx(order.begin() + static_cast<long>(s), order.begin() + static_cast<long>(std::min(n, s + static_cast<size_t>(batch_size))));
    auto r = fn(make_batch(e, idx).to(device)).to(torch::kCPU).to(torch::kFloat);
    if (!out.defined()) out = torch::empty({static_cast<int64_t>(n), r.size(1)}, torch::kFloat);
    auto where = torch::tensor(std::vector<int64_t>(idx.begin(), idx.end()), torch::kLong);
    out.index_copy_(0, where, r);
  }
  model.train(was_training);
  return out;
}
}  // namespace

torch::Tensor predict_logits(TextClassifier& model, const EncodedTexts& e, int64_t batch_size, const torch::Device& device) {
  return run_sorted(model, e, batch_size, device, [&](const TextBatch& b) { return model.logits(b); });
}

ScoredLogits score_logits(const torch::Tensor& logits, const std::vector<int64_t>& y, const DecisionRule& rule) {
  auto l = logits.to(torch::kCPU).to(torch::kFloat);
  auto probs = torch::softmax(l, 1).contiguous();
  ScoredLogits s;
  const int64_t k = probs.size(1);
  const float* p = probs.data_ptr<float>();
  for (int64_t i = 0; i < probs.size(0); ++i) {
    const float* row = p + i * k;
    s.predicted.push_back(decide(row, k, rule));
    s.confidence.push_back(row[s.predicted.back()]);
  }
  s.probs.assign(probs.data_ptr<float>(), probs.data_ptr<float>() + probs.numel());
  s.metrics = classification_metrics(y, s.predicted, l.size(1));
  add_log_loss(s.metrics, y, std::vector<float>(probs.data_ptr<float>(), probs.data_ptr<float>() + probs.numel()));
  return s;
}

torch::Tensor compute_features(TextClassifier& model, const EncodedTexts& e, int64_t batch_size, const torch::Device& device) {
  return run_sorted(model, e, batch_size, device, [&](const TextBatch& b) { return model.features(b); });
}

}  // namespace kotsu
