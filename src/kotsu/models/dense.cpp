#include "kotsu/models/dense.hpp"

#include <torch/torch.h>

#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/stack.h>

#include <cmath>

#include "kotsu/core/error.hpp"
#include "kotsu/models/quantize.hpp"
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

namespace {
c10::OperatorHandle quantized_op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "");
}
}  // namespace

torch::Tensor DenseImpl::forward(const torch::Tensor& x) {
  torch::Tensor y;
  if (is_int8()) {
    static const c10::OperatorHandle linear = quantized_op("quantized::linear_dynamic");
    auto size = x.sizes().vec();
    size.back() = out_features;
    torch::jit::Stack stack{x.reshape({-1, in_features}).to(torch::kFloat).contiguous(), packed_, false};
    linear.callBoxed(&stack);
    return stack[0].toTensor().view(size).to(x.scalar_type());
  }
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

int64_t DenseImpl::quantize_int8() {
  if (is_int8()) return 0;
  if (has_lora()) throw Error("int8", "lora", "a layer with a LoRA branch cannot be quantized (merge the adapter first)");
  static const c10::OperatorHandle prepack = quantized_op("quantized::linear_prepack");
  torch::NoGradGuard ng;
  // the int8 weights and scales of export --int8 (models/quantize), as a per-channel quantized [out, in] tensor
  const Int8Weight iw = quantize_weight_int8(weight, fan_in_fan_out);
  const torch::Tensor q = at::_make_per_channel_quantized_tensor((fan_in_fan_out ? iw.q.t() : iw.q).contiguous(),
                                                                 iw.scale.flatten().to(torch::kDouble),
                                                                 torch::zeros({out_features}, torch::kLong), 0);
  torch::jit::Stack stack{q, bias.defined() ? c10::IValue(bias.to(torch::kFloat).contiguous()) : c10::IValue()};
  prepack.callBoxed(&stack);
  packed_ = stack[0];
  const int64_t released = weight.numel() * weight.element_size();
  weight.set_data(torch::empty({0}, weight.options()));
  return released;
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
