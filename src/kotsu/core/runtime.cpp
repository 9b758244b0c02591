#include "kotsu/core/runtime.hpp"

#include "kotsu/core/error.hpp"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <dlfcn.h>
#include <malloc.h>
#include <link.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <thread>

// jemalloc reads this symbol at start-up: freed pages go back to the OS only after a second unused, because a
// fresh page costs ~12 us to fault in on these VMs and training allocates the same sizes every step (reused
// within milliseconds), while what loading, tokenising and feature caching freed is not needed again. Never
// handing pages back (-1) cost a third of the peak: full fine-tuning of MiniLM on 100 sentences peaked at
// 1,237 MB against 830-840 MB with 1 s, at the same CPU time (15.3 s user against 14.5-19.7 s, two runs each,
// 2026-12-07). MALLOC_CONF in the environment overrides it.
extern "C" {
const char* malloc_conf = "dirty_decay_ms:1000,muzzy_decay_ms:1000";
}

namespace kotsu {

void runtime_init(int threads) {
  if (threads <= 0) {
    unsigned hc = std::thread::hardware_concurrency();
    threads = hc == 0 ? 1 : static_cast<int>(hc);
    // a data-parallel worker shares the machine with LOCAL_WORLD_SIZE workers (torchrun's variable)
    if (const char* local = std::getenv("LOCAL_WORLD_SIZE"); local && std::atoi(local) > 1) threads = std::max(1, threads / std::atoi(local));
  }
  at::set_num_threads(threads);
}

int runtime_threads() { return at::get_num_threads(); }

void check_device(const std::string& spec) {
  if (spec == "cpu") return;
  if (spec.rfind("cuda", 0) != 0 || (spec.size() > 4 && (spec[4] != ':' || spec.size() == 5 ||
                                                          spec.find_first_not_of("0123456789", 5) != std::string::npos)))
    throw Error("options", "--device", "'" + spec + "' is not cpu or cuda[:N]");
  if (!torch::cuda::is_available()) {
    std::string why = spec;
    why += at::hasCUDA() ? ": no CUDA device (this kotsu is built against a CUDA libtorch but no GPU is visible)"
                         : ": no CUDA device (this kotsu is built against a CPU-only libtorch; rebuild with -DTorch_DIR=<CUDA libtorch>/share/cmake/Torch)";
    throw Error("options", "--device", why);
  }
  const long index = spec.size() > 5 ? std::strtol(spec.c_str() + 5, nullptr, 10) : 0;
  if (index >= static_cast<long>(torch::cuda::device_count())) {
    std::string why = spec;
    why += ": this machine has ";
    why += std::to_string(torch::cuda::device_count());
    why += " CUDA device(s)";
    throw Error("options", "--device", why);
  }
}

bool jemalloc_active() {
  using mallctl_fn = int (*)(const char*, void*, size_t*, void*, size_t);
  auto fn = reinterpret_cast<mallctl_fn>(dlsym(RTLD_DEFAULT, "mallctl"));
  if (!fn) return false;
  const char* version = nullptr;
  size_t len = sizeof(version);
  return fn("version", &version, &len, nullptr, 0) == 0 && version != nullptr;
}

void release_free_memory() {
  using mallctl_fn = int (*)(const char*, void*, size_t*, void*, size_t);
  if (auto fn = reinterpret_cast<mallctl_fn>(dlsym(RTLD_DEFAULT, "mallctl"))) {
    fn("arena.4096.purge", nullptr, nullptr, nullptr, 0);  // 4096: MALLCTL_ARENAS_ALL, every arena
    return;
  }
  malloc_trim(0);
}

std::string blas_library() {
  std::string found;
  dl_iterate_phdr(
      [](struct dl_phdr_info* info, size_t, void* data) {
        auto* out = static_cast<std::string*>(data);
        if (info->dlpi_name && std::strstr(info->dlpi_name, "libblas.so")) *out = info->dlpi_name;
        return 0;
      },
      &found);
  if (!found.empty()) {
    char buf[4096];
    if (realpath(found.c_str(), buf)) found = buf;
  }
  return found;
}

}  // namespace kotsu
