// kotsu/train/precision: mixed precision for the forward pass. Inside a Bf16Autocast scope, matmuls and
// linear layers run in bfloat16 (torch's autocast: oneDNN bf16 kernels on CPUs with AVX512-BF16, tensor
// cores on CUDA) while weights, gradients and the optimizer stay float32 (master weights).
// Off when `on` is false, so callers wrap unconditionally.
#pragma once
#include <torch/types.h>

namespace kotsu {

class Bf16Autocast {
 public:
  Bf16Autocast(bool on, const torch::Device& device);
  ~Bf16Autocast();
  Bf16Autocast(const Bf16Autocast&) = delete;
  Bf16Autocast& operator=(const Bf16Autocast&) = delete;

 private:
  bool on_, cuda_, prev_ = false;
};

// Whether this CPU has native bf16 dot products (AVX512-BF16); without them bf16 matmuls are emulated and slow.
bool cpu_has_native_bf16();

}  // namespace kotsu
