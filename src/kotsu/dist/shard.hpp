// kotsu/dist/shard: which examples of an epoch each data-parallel worker trains on. Every worker computes
// the same epoch order and the same global batches (same seed): global batch g holds the examples one
// process with batch W*B would take at step g (W workers, B examples each), and worker r takes the r-th
// of W contiguous, near-equal parts of it (exactly B when the batch is full). A short last batch is dealt
// the same way, so a worker can get fewer examples at that step, or none when it has fewer than W; every
// worker still takes part in every step (its gradient counts by its share of the batch), and no example
// is trained twice in an epoch.
#pragma once
#include <cstddef>
#include <vector>

namespace kotsu {

// Worker `rank`'s part of one global batch: the contiguous range [m*rank/W, m*(rank+1)/W) of its m examples.
std::vector<size_t> worker_slice(const std::vector<size_t>& global_batch, int rank, int world);
// Worker `rank`'s batches for one epoch: its part of every global batch (as many as there are global batches).
std::vector<std::vector<size_t>> worker_batches(const std::vector<std::vector<size_t>>& global_batches, int rank, int world);
// The contiguous range [from, to) of `n` items (validation examples) worker `rank` evaluates.
std::pair<size_t, size_t> worker_range(size_t n, int rank, int world);

}  // namespace kotsu
