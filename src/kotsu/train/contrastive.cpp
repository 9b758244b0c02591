#include "kotsu/train/contrastive.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <map>

namespace kotsu {

std::vector<std::vector<size_t>> class_grouped_batches(const std::vector<size_t>& order, const std::vector<int64_t>& targets,
                                                       size_t batch_size, size_t per_class, std::mt19937_64& rng) {
  std::map<int64_t, std::vector<size_t>> by_class;
  for (size_t i : order) by_class[targets.at(i)].push_back(i);
  std::vector<std::vector<size_t>> runs;
  for (auto& [label, idx] : by_class)
    for (size_t at = 0; at < idx.size(); at += per_class)
      runs.emplace_back(idx.begin() + static_cast<std::ptrdiff_t>(at), idx.begin() + static_cast<std::ptrdiff_t>(std::min(idx.size(), at + per_class)));
  std::shuffle(runs.begin(), runs.end(), rng);
  std::vector<std::vector<size_t>> batches;
  std::vector<size_t> cur;
  for (const auto& run : runs)
    for (size_t i : run) {
      cur.push_back(i);
      if (cur.size() == batch_size) batches.push_back(std::move(cur)), cur.clear();
    }
  if (!cur.empty()) batches.push_back(std::move(cur));
  return batches;
}

torch::Tensor pair_similarity_loss(const torch::Tensor& features, const torch::Tensor& labels) {
  const int64_t b = features.size(0);
  if (b < 2) return (features.sum() * 0).to(torch::kFloat);
  const auto f = torch::nn::functional::normalize(features.to(torch::kFloat), torch::nn::functional::NormalizeFuncOptions().p(2).dim(1).eps(1e-12));
  const auto cos = f.matmul(f.t());
  const auto upper = torch::ones({b, b}, torch::TensorOptions().dtype(torch::kBool).device(f.device())).triu(1);
  const auto same = labels.unsqueeze(1).eq(labels.unsqueeze(0));
  const auto pos = same.logical_and(upper), neg = same.logical_not().logical_and(upper);
  const auto n_pos = pos.sum().item<int64_t>(), n_neg = neg.sum().item<int64_t>();
  const auto pos_loss = (cos - 1).pow(2).masked_select(pos), neg_loss = cos.pow(2).masked_select(neg);
  if (n_pos == 0) return neg_loss.mean();
  if (n_neg == 0) return pos_loss.mean();
  return 0.5 * pos_loss.mean() + 0.5 * neg_loss.mean();
}

}  // namespace kotsu
