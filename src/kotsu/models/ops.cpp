#include "kotsu/models/ops.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <mutex>
#include <type_traits>

namespace kotsu {

namespace {

inline uint32_t fmix32(uint32_t h) {  // MurmurHash3's finaliser: a fast, well-mixed 32-bit bijection
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

// The key of element i: distinct for every i (blocks of 2^32 elements differ through the high bits).
inline uint32_t element_hash(int64_t i, uint32_t s1, uint32_t s2) {
  return fmix32((static_cast<uint32_t>(i) * 0x9E3779B1u + s1) ^ (s2 + static_cast<uint32_t>(i >> 32)));
}

// The float path, compiled for AVX2 too (vector 32-bit multiplies), picked by the CPU at load time.
__attribute__((target_clones("arch=x86-64-v3", "default")))
void mask_float(const float* __restrict in, float* __restrict out, int64_t begin, int64_t end, uint32_t threshold, float scale,
                uint32_t s1, uint32_t s2) {
  for (int64_t i = begin; i < end; ++i) out[i] = in[i] * (element_hash(i, s1, s2) >= threshold ? scale : 0.0f);
}

template <class T>
void apply_mask(const T* in, T* out, int64_t n, double p, uint64_t seed) {
  const uint32_t threshold = static_cast<uint32_t>(std::min(4294967295.0, p * 4294967296.0));
  const float scale = static_cast<float>(1.0 / (1.0 - p));
  const uint32_t s1 = static_cast<uint32_t>(seed), s2 = fmix32(static_cast<uint32_t>(seed >> 32) ^ 0x9E3779B9u);
  at::parallel_for(0, n, 32768, [&](int64_t begin, int64_t end) {
    if constexpr (std::is_same_v<T, float>) {
      mask_float(in, out, begin, end, threshold, scale, s1, s2);
    } else {
      for (int64_t i = begin; i < end; ++i)
        out[i] = static_cast<T>(static_cast<float>(in[i]) * (element_hash(i, s1, s2) >= threshold ? scale : 0.0f));
    }
  });
}

torch::Tensor run(const torch::Tensor& x, double p, uint64_t seed) {
  auto in = x.contiguous();
  auto out = torch::empty_like(in);
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, in.scalar_type(), "kotsu_dropout", [&] {
    apply_mask<scalar_t>(in.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), in.numel(), p, seed);
  });
  return out;
}

struct HashDropoutFn : torch::autograd::Function<HashDropoutFn> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, double p, int64_t seed) {
    ctx->saved_data["p"] = p;
    ctx->saved_data["seed"] = seed;
    return run(x, p, static_cast<uint64_t>(seed));
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::tensor_list grads) {
    const double p = ctx->saved_data["p"].toDouble();
    const auto seed = static_cast<uint64_t>(ctx->saved_data["seed"].toInt());
    return {run(grads[0], p, seed), torch::Tensor(), torch::Tensor()};
  }
};

uint64_t draw_seed() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get<at::CPUGeneratorImpl>()->random64();
}

bool g_torch_dropout = false;

}  // namespace

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& mask_bias,
                        int64_t heads, double dropout_p, bool training) {
  const int64_t B = q.size(0), T = q.size(1), H = q.size(2), d = H / heads;
  auto split = [&](const torch::Tensor& t) { return t.view({B, T, heads, d}).transpose(1, 2); };
  // scaling q ([B, T, H]) costs less than scaling the scores ([B, heads, T, T]) when T > head size
  auto scores = torch::matmul(split(q * (1.0 / std::sqrt(static_cast<double>(d)))), split(k).transpose(-1, -2));
  if (mask_bias.defined()) scores.add_(mask_bias);  // in place: matmul's backward does not need its output
  auto probs = kotsu::dropout(torch::softmax(scores, -1), dropout_p, training);
  return torch::matmul(probs, split(v)).transpose(1, 2).reshape({B, T, H});
}

torch::Tensor attention_mask_bias(const torch::Tensor& mask, torch::ScalarType dtype) {
  if (mask.min().item<int64_t>() != 0) return {};  // no padding in the batch: nothing to mask
  auto m = mask.to(dtype).unsqueeze(1).unsqueeze(2);
  double lowest = dtype == torch::kBFloat16 ? -3.3895313892515355e38
                  : dtype == torch::kHalf   ? -65504.0
                  : dtype == torch::kDouble ? std::numeric_limits<double>::lowest()
                                            : std::numeric_limits<float>::lowest();
  return (1.0 - m) * lowest;
}

torch::Tensor activation(const torch::Tensor& x, const std::string& name) {
  if (name == "gelu") return torch::gelu(x);
  if (name == "relu") return torch::relu(x);
  return torch::gelu(x, "tanh");  // gelu_new, gelu_pytorch_tanh
}

void use_torch_dropout(bool on) { g_torch_dropout = on; }

torch::Tensor hash_dropout(const torch::Tensor& x, double p, uint64_t seed) {
  return HashDropoutFn::apply(x, p, static_cast<int64_t>(seed));
}

torch::Tensor dropout(const torch::Tensor& x, double p, bool training) {
  if (!training || p <= 0) return x;
  if (p >= 1) return x * 0;
  if (!x.device().is_cpu() || g_torch_dropout) return torch::dropout(x, p, true);
  return HashDropoutFn::apply(x, p, static_cast<int64_t>(draw_seed()));
}

torch::Tensor pad_same(const torch::Tensor& x, int64_t k, int64_t s) {
  auto total = [&](int64_t n) { return std::max<int64_t>((n + s - 1) / s * s - s + k - n, 0); };
  const int64_t ph = total(x.size(2)), pw = total(x.size(3));
  if (ph == 0 && pw == 0) return x;
  return torch::nn::functional::pad(x, torch::nn::functional::PadFuncOptions({pw / 2, pw - pw / 2, ph / 2, ph - ph / 2}));
}

}  // namespace kotsu
