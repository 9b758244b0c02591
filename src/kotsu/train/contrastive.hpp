// kotsu/train/contrastive: the batches and the loss of --strategy contrastive, SetFit's recipe (Tunstall et al.,
// "Efficient Few-Shot Learning Without Prompts", 2022: a sentence encoder tuned so that the cosine similarity
// of two examples' embeddings is 1 for the same class and 0 for different classes, then a logistic-regression
// head on the tuned embeddings) computed on every pair of a batch at once instead of SetFit's separately
// drawn pairs: a batch of B examples encodes each once and gives B(B-1)/2 pairs.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <random>
#include <vector>

namespace kotsu {

// An epoch's batches for the pair loss: `order` (the epoch's example order) grouped by class into runs of up
// to `per_class` examples of one class, the runs shuffled and cut into batches of `batch_size`, so that a
// batch holds positive pairs even with many classes. Every index of `order` appears exactly once.
std::vector<std::vector<size_t>> class_grouped_batches(const std::vector<size_t>& order, const std::vector<int64_t>& targets,
                                                       size_t batch_size, size_t per_class, std::mt19937_64& rng);

// SetFit's CosineSimilarityLoss over all pairs i < j of the batch, positive and negative pairs weighted
// equally (as SetFit's oversampling draws as many of each): 0.5 mean over same-class pairs of (cos - 1)^2 +
// 0.5 mean over other pairs of cos^2; a batch with only one kind of pair takes that kind's mean.
// features [B, F] (any scale), labels [B]. A batch of one example has no pair: 0.
torch::Tensor pair_similarity_loss(const torch::Tensor& features, const torch::Tensor& labels);

}  // namespace kotsu
