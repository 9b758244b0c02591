// kotsu/models/ops: building blocks shared by architectures.
// dropout(): inverted dropout whose keep/drop decision for element i is a hash of (seed, i), so the mask
// is never stored (backward recomputes it) and costs about as much as one multiply. torch's CPU bernoulli
// draws from a sequential generator and cost more than the matmuls in a BERT-tiny step (bench/train_step).
// The seed is drawn from torch's default generator, so torch::manual_seed makes runs reproducible.
// Written by hand: neither libtorch nor a Debian library has a counter-based CPU dropout.
#pragma once
#include <torch/types.h>

#include <string>

namespace kotsu {

torch::Tensor dropout(const torch::Tensor& x, double p, bool training);
// Pads [B, C, H, W] like TensorFlow's SAME for a k x k convolution with stride s: total
// max((ceil(n/s) - 1) * s + k - n, 0) per side pair, the odd pixel after (weights ported from TensorFlow).
torch::Tensor pad_same(const torch::Tensor& x, int64_t k, int64_t s);
// Scaled dot-product attention as Hugging Face's eager path computes it:
// softmax(q k^T / sqrt(d) + mask_bias) (dropout) v, with q, k, v [B, T, H] split into `heads`,
// mask_bias [B, 1, 1, T] or undefined; returns the context [B, T, H].
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& mask_bias,
                        int64_t heads, double dropout_p, bool training);
// 0 for real tokens, the dtype's lowest value for padding: [B, 1, 1, T] from an attention mask [B, T];
// undefined when the batch has no padding (attention() then adds nothing).
torch::Tensor attention_mask_bias(const torch::Tensor& mask, torch::ScalarType dtype);
torch::Tensor activation(const torch::Tensor& x, const std::string& name);  // gelu, gelu_new, relu, ...
// Benchmarks only: route dropout() to torch::dropout, to measure what the hash dropout saves.
void use_torch_dropout(bool on);
// The mask kernel itself, for tests: out = x * keep(seed, i) / (1 - p).
torch::Tensor hash_dropout(const torch::Tensor& x, double p, uint64_t seed);

}  // namespace kotsu
