// bench/allreduce: all-reduce bandwidth of kotsu's worker group (dist/process_group on c10d Gloo), one
// worker per process; started by bench/ddp.py with torchrun's variables. For each size: the median time of
// summing a float32 buffer over the workers, and algorithm bandwidth = bytes / time. Rank 0 prints one
// JSON line.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "kotsu/core/runtime.hpp"
#include "kotsu/dist/process_group.hpp"

int main() {
  kotsu::runtime_init(1);
  kotsu::ProcessGroup pg(kotsu::dist_config_from_env());
  std::string json = "{\"workers\": " + std::to_string(pg.size()) + ", \"sizes\": [";
  bool first = true;
  torch::Tensor warm = torch::ones({1 << 18});
  for (int i = 0; i < 20; ++i) pg.start_sum(warm).wait();  // connections and buffers set up before timing
  for (int64_t bytes = int64_t{1} << 12; bytes <= int64_t{64} << 20; bytes *= 4) {
    torch::Tensor t = torch::ones({bytes / 4});
    const int reps = bytes >= (int64_t{16} << 20) ? 5 : 20;
    std::vector<double> ms;
    for (int i = 0; i < reps + 2; ++i) {
      pg.barrier();
      const auto t0 = std::chrono::steady_clock::now();
      pg.start_sum(t).wait();  // what training's gradient buckets use
      if (i >= 2) ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::nth_element(ms.begin(), ms.begin() + static_cast<long>(ms.size() / 2), ms.end());
    const double med = ms[ms.size() / 2];
    if (!first) json += ", ";
    json += "{\"bytes\": ";
    json += std::to_string(bytes);
    json += ", \"ms\": ";
    json += std::to_string(med);
    json += ", \"gb_per_s\": ";
    json += std::to_string(static_cast<double>(bytes) / (med * 1e-3) / 1e9);
    json += "}";
    first = false;
  }
  json += "]}";
  if (pg.rank() == 0) std::printf("%s\n", json.c_str());
  return 0;
}
