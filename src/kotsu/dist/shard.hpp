// kotsu/dist/shard: which examples of an epoch each data-parallel worker trains on. Every worker computes
// the same epoch order (same seed); step g of the run is the global batch order[g*W*B, (g+1)*W*B) (W
// workers, B examples each), the same examples one process with batch W*B would take at step g, and
// worker r takes its slice [r*B, (r+1)*B). The last global batch may be short: its examples are dealt
// in the same way, so a worker can get fewer examples, or none, at that step; every worker still takes
// part in every step (the all-reduce weights each worker's gradient by its example count), and no
// example is trained twice in an epoch.
#pragma once
#include <cstddef>
#include <vector>

namespace kotsu {

// Worker `rank`'s batches (indices into the dataset) for one epoch; every worker gets the same number of
// batches, ceil(order.size() / (world * batch)), some possibly empty at the end.
std::vector<std::vector<size_t>> worker_batches(const std::vector<size_t>& order, size_t batch, int rank, int world);

}  // namespace kotsu
