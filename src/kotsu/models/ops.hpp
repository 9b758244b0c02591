// kotsu/models/ops: building blocks shared by architectures.
// dropout(): inverted dropout whose keep/drop decision for element i is a hash of (seed, i), so the mask
// is never stored (backward recomputes it) and costs about as much as one multiply. torch's CPU bernoulli
// draws from a sequential generator and cost more than the matmuls in a BERT-tiny step (bench/train_step).
// The seed is drawn from torch's default generator, so torch::manual_seed makes runs reproducible.
// Written by hand: neither libtorch nor a Debian library has a counter-based CPU dropout.
#pragma once
#include <torch/types.h>

namespace kotsu {

torch::Tensor dropout(const torch::Tensor& x, double p, bool training);
// Benchmarks only: route dropout() to torch::dropout, to measure what the hash dropout saves.
void use_torch_dropout(bool on);
// The mask kernel itself, for tests: out = x * keep(seed, i) / (1 - p).
torch::Tensor hash_dropout(const torch::Tensor& x, double p, uint64_t seed);

}  // namespace kotsu
