#include "kotsu/dist/shard.hpp"

#include <algorithm>

#include "kotsu/core/error.hpp"

namespace kotsu {

std::pair<size_t, size_t> worker_range(size_t n, int rank, int world) {
  if (world < 1 || rank < 0 || rank >= world) throw Error("distributed", "RANK", "rank outside the world");
  const size_t w = static_cast<size_t>(world), r = static_cast<size_t>(rank);
  return {n * r / w, n * (r + 1) / w};
}

std::vector<size_t> worker_slice(const std::vector<size_t>& global_batch, int rank, int world) {
  const auto [from, to] = worker_range(global_batch.size(), rank, world);
  return {global_batch.begin() + static_cast<std::ptrdiff_t>(from), global_batch.begin() + static_cast<std::ptrdiff_t>(to)};
}

std::vector<std::vector<size_t>> worker_batches(const std::vector<std::vector<size_t>>& global_batches, int rank, int world) {
  std::vector<std::vector<size_t>> out;
  out.reserve(global_batches.size());
  for (const auto& g : global_batches) out.push_back(worker_slice(g, rank, world));
  return out;
}

}  // namespace kotsu
