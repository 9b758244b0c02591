#include "kotsu/train/head_fit.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <limits>
#include <map>
#include <random>

namespace kotsu {

namespace {

bool is_bias(const std::string& name) { return name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0; }

struct Head {
  std::vector<torch::Tensor> params, weights;
};

Head head_of(Classifier& model) {
  Head h;
  for (auto& g : model.param_groups())
    if (g.name == "head")
      for (auto& [n, t] : g.params) {
        h.params.push_back(t);
        if (!is_bias(n)) h.weights.push_back(t);
      }
  return h;
}

// From the seeded initial head, L-BFGS to convergence on mean cross-entropy + l2/2 * squared weights.
void fit(Classifier& model, const Head& h, const torch::Tensor& x, const torch::Tensor& y, double l2, uint64_t seed,
         double label_smoothing, const torch::Tensor& class_weights) {
  model.init_head(seed);
  auto ce = torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(label_smoothing);
  if (class_weights.defined()) ce.weight(class_weights);
  torch::optim::LBFGS opt(h.params, torch::optim::LBFGSOptions(1.0)
                                        .max_iter(200)
                                        .history_size(20)
                                        .tolerance_grad(1e-6)
                                        .tolerance_change(1e-10)
                                        .line_search_fn("strong_wolfe"));
  auto closure = [&]() {
    opt.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(model.head(x).to(torch::kFloat), y, ce);
    for (auto& w : h.weights) loss = loss + 0.5 * l2 * w.square().sum();
    loss.backward();
    return loss;
  };
  opt.step(closure);
}

double log_loss(const torch::Tensor& logits, const torch::Tensor& y, const torch::Tensor& class_weights) {
  auto ce = torch::nn::functional::CrossEntropyFuncOptions();
  if (class_weights.defined()) ce.weight(class_weights);
  return torch::nn::functional::cross_entropy(logits, y, ce).item<double>();
}

// k folds stratified by label: each class's rows shuffled (seeded) and dealt round robin.
std::vector<int64_t> stratified_folds(const torch::Tensor& y, int64_t k, uint64_t seed) {
  auto yc = y.to(torch::kCPU).contiguous();
  const int64_t n = yc.size(0);
  std::map<int64_t, std::vector<int64_t>> by;
  for (int64_t i = 0; i < n; ++i) by[yc[i].item<int64_t>()].push_back(i);
  std::mt19937_64 rng(seed ^ 0xC0FFEEULL);
  std::vector<int64_t> fold(static_cast<size_t>(n));
  int64_t next = 0;
  for (auto& [label, rows] : by) {
    std::shuffle(rows.begin(), rows.end(), rng);
    for (int64_t r : rows) fold[static_cast<size_t>(r)] = next++ % k;
  }
  return fold;
}

}  // namespace

HeadFit fit_head(Classifier& model, const torch::Tensor& x, const torch::Tensor& y, uint64_t seed,
                 double label_smoothing, const torch::Tensor& class_weights) {
  Head h = head_of(model);
  // the head's parameters take gradients while it is fitted, whatever the strategy freezes (contrastive
  // trains the encoder alone), and get their flags back after
  std::vector<bool> flags;
  for (auto& p : h.params) flags.push_back(p.requires_grad()), p.set_requires_grad(true);
  struct Restore {
    Head& h;
    std::vector<bool>& flags;
    ~Restore() {
      for (size_t i = 0; i < h.params.size(); ++i) h.params[i].set_requires_grad(flags[i]);
    }
  } restore{h, flags};
  model.eval();  // no dropout: the L2 penalty regularises, and L-BFGS needs a deterministic loss
  // per-example strengths on features of unit scale per dimension (USE-Lite's scaled embedding, BERT's pooler):
  // l2 = 1 is about scikit-learn's C = 1 at N = 500
  const double grid[] = {10, 3, 1, 3e-1, 1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 1e-4};
  const int64_t n = x.size(0);
  const int64_t k = std::min<int64_t>(3, n / 2);
  HeadFit best;
  best.cv_loss = std::numeric_limits<double>::infinity();
  if (k >= 2) {
    auto fold = stratified_folds(y, k, seed);
    std::vector<torch::Tensor> tr(static_cast<size_t>(k)), te(static_cast<size_t>(k));
    for (int64_t f = 0; f < k; ++f) {
      std::vector<int64_t> a, b;
      for (int64_t i = 0; i < n; ++i) (fold[static_cast<size_t>(i)] == f ? b : a).push_back(i);
      tr[static_cast<size_t>(f)] = torch::tensor(a, torch::kLong).to(x.device());
      te[static_cast<size_t>(f)] = torch::tensor(b, torch::kLong).to(x.device());
    }
    best.folds = k;
    for (double l2 : grid) {
      double sum = 0;
      torch::Tensor oof;
      for (int64_t f = 0; f < k; ++f) {
        const auto& a = tr[static_cast<size_t>(f)];
        const auto& b = te[static_cast<size_t>(f)];
        fit(model, h, x.index_select(0, a), y.index_select(0, a), l2, seed, label_smoothing, class_weights);
        torch::NoGradGuard ng;
        const torch::Tensor z = model.head(x.index_select(0, b)).to(torch::kFloat);
        sum += log_loss(z, y.index_select(0, b), class_weights) * static_cast<double>(b.size(0));
        if (!oof.defined()) oof = torch::zeros({n, z.size(1)}, z.options());
        oof.index_copy_(0, b, z);
      }
      const double cv = sum / static_cast<double>(n);
      ++best.candidates;
      if (cv < best.cv_loss || best.candidates == 1) {
        best.cv_loss = cv;
        best.l2 = l2;
        best.oof_logits = oof;
      }
    }
  } else {
    best.l2 = 1;  // too few rows to cross-validate
  }
  fit(model, h, x, y, best.l2, seed, label_smoothing, class_weights);
  for (auto& p : h.params) p.mutable_grad() = torch::Tensor();
  return best;
}

}  // namespace kotsu
