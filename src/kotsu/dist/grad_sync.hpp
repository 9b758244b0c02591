// kotsu/dist/grad_sync: sums the trainable gradients over the data-parallel workers in buckets, each sent
// as soon as its gradients are ready during the backward pass, so communication overlaps the rest of
// the backward (what PyTorch DDP's Reducer does). Buckets hold parameters in reverse registration order
// (about the order backward produces them): a small first bucket to start early, then up to
// `bucket_bytes` each; they are started strictly in bucket order on every worker, which Gloo requires.
// Written by hand on c10d's ProcessGroupGloo: c10d's own Reducer is compiled into Debian's libtorch but its
// header needs torch/csrc/distributed/autograd headers that libtorch-dev does not ship.
// The workers' losses must be scaled so that the sum is the step's gradient (each worker's loss times its
// share of the global batch): then the summed gradient equals one process's on the whole batch.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "kotsu/dist/process_group.hpp"

namespace torch::autograd {
struct Node;
}

namespace kotsu {

class GradSync {
 public:
  static constexpr size_t kFirstBucketBytes = size_t{1} << 20;
  static constexpr size_t kBucketBytes = size_t{25} << 20;
  GradSync(ProcessGroup& group, std::vector<torch::Tensor> params, size_t bucket_bytes = kBucketBytes);
  ~GradSync();  // removes its autograd hooks
  GradSync(const GradSync&) = delete;
  GradSync& operator=(const GradSync&) = delete;

  // The next backward pass is the last of the step: its gradients (with any accumulated before) are sent
  // as they become ready. Without arm() a backward only accumulates locally (gradient accumulation).
  void arm();
  // After the step's last backward (or instead of one, on a worker with no examples this step): sends
  // what is left (missing gradients as zeros), waits, and leaves every parameter's .grad = the sum over
  // the workers. kotsu::Error when a worker was lost.
  void finish();
  size_t buckets() const { return buckets_.size(); }
  // Of the last step: buckets whose sum was started inside the backward pass (by its hooks), and the
  // milliseconds finish() spent sending the rest and waiting (the communication backward did not hide).
  size_t started_during_backward() const { return overlapped_; }
  double exposed_ms() const { return exposed_ms_; }

 private:
  struct Bucket {
    std::vector<size_t> params;
    std::vector<int64_t> offsets;
    torch::Tensor flat;
    size_t pending = 0;  // parameters not yet copied in
    bool started = false;
    ProcessGroup::PendingSum sum;
  };
  void ready(size_t param);      // autograd hook: param's gradient is complete for this backward
  void copy_in(size_t param);    // its gradient (or zeros) into its bucket slot
  void start_in_order();         // starts every complete bucket whose predecessors have started
  ProcessGroup& group_;
  std::vector<torch::Tensor> params_;
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucket_of_, slot_of_;
  std::vector<uint8_t> copied_;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;
  std::vector<uintptr_t> hook_keys_;
  std::mutex mutex_;
  bool armed_ = false;
  size_t next_ = 0, in_backward_ = 0, overlapped_ = 0;
  double exposed_ms_ = 0;
};

}  // namespace kotsu
