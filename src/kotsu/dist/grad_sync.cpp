#include "kotsu/dist/grad_sync.hpp"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/torch.h>

#include <chrono>

#include "kotsu/core/error.hpp"

namespace kotsu {

namespace {
// Runs after AccumulateGrad has added this backward's gradient into the parameter's .grad.
struct ReadyHook : torch::autograd::FunctionPostHook {
  std::function<void()> fn;
  explicit ReadyHook(std::function<void()> f) : fn(std::move(f)) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs, const torch::autograd::variable_list&) override {
    fn();
    return outputs;
  }
};
}  // namespace

GradSync::GradSync(ProcessGroup& group, std::vector<torch::Tensor> params, size_t bucket_bytes)
    : group_(group), params_(std::move(params)) {
  const size_t n = params_.size();
  bucket_of_.assign(n, 0);
  slot_of_.assign(n, 0);
  copied_.assign(n, 0);
  // reverse order, one dtype and device per bucket
  size_t limit = std::min(kFirstBucketBytes, bucket_bytes), bytes = 0;
  std::vector<int64_t> numel;
  for (size_t k = n; k-- > 0;) {
    const torch::Tensor& p = params_[k];
    if (!p.requires_grad()) throw Error("distributed", "gradients", "a synchronised parameter does not require a gradient");
    const size_t b = static_cast<size_t>(p.numel()) * p.element_size();
    const bool fresh = buckets_.empty() || bytes + b > limit || params_[buckets_.back().params.front()].scalar_type() != p.scalar_type() ||
                       params_[buckets_.back().params.front()].device() != p.device();
    if (fresh) {
      if (!buckets_.empty()) limit = bucket_bytes;
      buckets_.emplace_back();
      numel.push_back(0);
      bytes = 0;
    }
    Bucket& bk = buckets_.back();
    bucket_of_[k] = buckets_.size() - 1;
    slot_of_[k] = bk.params.size();
    bk.params.push_back(k);
    bk.offsets.push_back(numel.back());
    numel.back() += p.numel();
    bytes += b;
  }
  for (size_t i = 0; i < buckets_.size(); ++i) {
    const torch::Tensor& first = params_[buckets_[i].params.front()];
    buckets_[i].flat = torch::empty({numel[i]}, torch::TensorOptions().dtype(first.scalar_type()).device(first.device()));
    buckets_[i].pending = buckets_[i].params.size();
  }
  for (size_t k = 0; k < n; ++k) {
    auto acc = torch::autograd::impl::grad_accumulator(params_[k]);
    hook_keys_.push_back(acc->add_post_hook(std::make_unique<ReadyHook>([this, k] { ready(k); })));
    accumulators_.push_back(std::move(acc));
  }
}

GradSync::~GradSync() {
  for (size_t k = 0; k < accumulators_.size(); ++k) accumulators_[k]->del_post_hook(hook_keys_[k]);
}

void GradSync::arm() {
  std::lock_guard<std::mutex> lock(mutex_);
  armed_ = true;
}

void GradSync::copy_in(size_t k) {
  Bucket& bk = buckets_[bucket_of_[k]];
  const torch::Tensor& p = params_[k];
  torch::Tensor slot = bk.flat.narrow(0, bk.offsets[slot_of_[k]], p.numel());
  const torch::Tensor& g = p.grad();
  if (g.defined()) slot.copy_(g.is_sparse() ? g.to_dense().reshape(-1) : g.reshape(-1));
  else slot.zero_();
  copied_[k] = 1;
  --bk.pending;
}

void GradSync::start_in_order() {
  while (next_ < buckets_.size() && buckets_[next_].pending == 0) {
    Bucket& bk = buckets_[next_++];
    bk.sum = group_.start_sum(bk.flat);  // in place; Gloo also sums CUDA tensors
    bk.started = true;
  }
}

void GradSync::ready(size_t k) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!armed_ || copied_[k]) return;
  torch::NoGradGuard ng;
  copy_in(k);
  const size_t before = next_;
  start_in_order();
  in_backward_ += next_ - before;
}

void GradSync::finish() {
  const auto t0 = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(mutex_);
  torch::NoGradGuard ng;
  for (size_t k = params_.size(); k-- > 0;)  // bucket order: parameters unused this step count as zeros
    if (!copied_[k]) copy_in(k);
  start_in_order();
  std::exception_ptr error;
  for (auto& bk : buckets_) {
    try {
      bk.sum.wait();
    } catch (...) {
      if (!error) error = std::current_exception();
    }
  }
  exposed_ms_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  // reset for the next step before reporting a failure
  overlapped_ = in_backward_;
  in_backward_ = 0;
  for (auto& bk : buckets_) {
    bk.pending = bk.params.size();
    bk.started = false;
  }
  std::fill(copied_.begin(), copied_.end(), 0);
  next_ = 0;
  armed_ = false;
  if (error) std::rethrow_exception(error);
  for (auto& bk : buckets_) {
    const torch::Tensor& summed = bk.flat;
    for (size_t s = 0; s < bk.params.size(); ++s) {
      torch::Tensor& p = params_[bk.params[s]];
      torch::Tensor v = summed.narrow(0, bk.offsets[s], p.numel()).view(p.sizes());
      torch::Tensor& g = p.mutable_grad();
      if (g.defined() && !g.is_sparse()) g.copy_(v);
      else g = v.clone();
    }
  }
}

}  // namespace kotsu
