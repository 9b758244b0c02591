#include "kotsu/train/precision.hpp"

#include <ATen/autocast_mode.h>

#include <fstream>
#include <string>

namespace kotsu {

Bf16Autocast::Bf16Autocast(bool on, const torch::Device& device) : on_(on), cuda_(device.is_cuda()) {
  if (!on_) return;
  if (cuda_) {
    prev_ = at::autocast::is_enabled();
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(true);
  } else {
    prev_ = at::autocast::is_cpu_enabled();
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    at::autocast::set_cpu_enabled(true);
  }
}

Bf16Autocast::~Bf16Autocast() {
  if (!on_) return;
  if (cuda_) at::autocast::set_enabled(prev_);
  else at::autocast::set_cpu_enabled(prev_);
  at::autocast::clear_cache();
}

bool cpu_has_native_bf16() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("flags", 0) == 0) return line.find(" avx512_bf16") != std::string::npos || line.find(" amx_bf16") != std::string::npos;
  return false;
}

}  // namespace kotsu
