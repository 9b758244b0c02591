#include "kotsu/dist/shard.hpp"

#include <algorithm>

#include "kotsu/core/error.hpp"

namespace kotsu {

std::vector<std::vector<size_t>> worker_batches(const std::vector<size_t>& order, size_t batch, int rank, int world) {
  if (batch == 0) throw Error("options", "batch_size", "must be >= 1");
  if (world < 1 || rank < 0 || rank >= world) throw Error("distributed", "RANK", "rank outside the world");
  const size_t global = batch * static_cast<size_t>(world);
  const size_t steps = (order.size() + global - 1) / global;
  std::vector<std::vector<size_t>> out(steps);
  for (size_t g = 0; g < steps; ++g) {
    const size_t from = std::min(order.size(), g * global + static_cast<size_t>(rank) * batch);
    const size_t to = std::min(order.size(), from + batch);
    out[g].assign(order.begin() + static_cast<std::ptrdiff_t>(from), order.begin() + static_cast<std::ptrdiff_t>(to));
  }
  return out;
}

}  // namespace kotsu
