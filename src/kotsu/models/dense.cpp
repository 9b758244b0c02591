#include "kotsu/models/dense.hpp"

#include <torch/torch.h>

#include <cmath>

#include "kotsu/core/error.hpp"
#include "kotsu/models/ops.hpp"

namespace kotsu {

double LoraShape::scaling() const { return rslora ? alpha / std::sqrt(static_cast<double>(r)) : alpha / static_cast<double>(r); }

DenseImpl::DenseImpl(int64_t in, int64_t out, bool has_bias, bool fifo) : in_features(in), out_features(out), fan_in_fan_out(fifo) {
  weight = register_parameter("weight", fifo ? torch::empty({in, out}) : torch::empty({out, in}));
  if (has_bias) bias = register_parameter("bias", torch::zeros({out}));
  torch::NoGradGuard ng;
  const double bound = 1.0 / std::sqrt(static_cast<double>(in));
  weight.uniform_(-bound, bound);  // loaded over in practice
}

torch::Tensor DenseImpl::forward(const torch::Tensor& x) {
  torch::Tensor y;
  if (fan_in_fan_out) {
    auto size = x.sizes().vec();
    size.back() = out_features;
    const auto x2 = x.reshape({-1, in_features});
    y = (bias.defined() ? torch::addmm(bias, x2, weight) : torch::mm(x2, weight)).view(size);
  } else {
    y = torch::linear(x, weight, bias);
  }
  if (!lora_a_.defined()) return y;
  const auto xa = kotsu::dropout(x.to(lora_a_.scalar_type()), lora_.dropout, is_training());
  const auto delta = torch::linear(torch::linear(xa, lora_a_), lora_b_) * lora_.scaling();
  return y + delta.to(y.scalar_type());
}

void DenseImpl::add_lora(const LoraShape& shape, uint64_t seed) {
  if (lora_a_.defined()) throw Error("lora", "target_modules", "a layer got two LoRA adapters");
  if (shape.r < 1) throw Error("lora", "r", "must be >= 1");
  lora_ = shape;
  // float32 adapters on float32/bf16/f16 weights (PEFT's autocast_adapter_dtype); float64 stays float64
  const auto dtype = weight.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
  const auto opts = torch::TensorOptions().dtype(dtype).device(weight.device());
  // nn.Linear's reset_parameters (kaiming_uniform_ with a = sqrt(5)): U(-1/sqrt(in), 1/sqrt(in))
  const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
  auto gen = at::detail::createCPUGenerator(seed);
  auto a = torch::empty({shape.r, in_features}, torch::kFloat);
  a.uniform_(-bound, bound, gen);
  lora_a_ = register_module("lora_A", std::make_shared<torch::nn::Module>())->register_parameter("weight", a.to(opts));
  lora_b_ = register_module("lora_B", std::make_shared<torch::nn::Module>())->register_parameter("weight", torch::zeros({out_features, shape.r}, opts));
  weight.set_requires_grad(false);
  if (bias.defined()) bias.set_requires_grad(false);
}

void DenseImpl::merge_lora() {
  if (!lora_a_.defined()) return;
  torch::NoGradGuard ng;
  auto delta = torch::mm(lora_b_, lora_a_) * lora_.scaling();  // [out, in]
  if (fan_in_fan_out) delta = delta.t();
  weight.add_(delta.to(weight.scalar_type()));
  unregister_module("lora_A");
  unregister_module("lora_B");
  lora_a_ = lora_b_ = torch::Tensor();
}

}  // namespace kotsu
