// kotsu/dist/process_group: the workers of a data-parallel run, joined through torch's c10d engine (the
// one under PyTorch DDP): a TCPStore rendezvous at MASTER_ADDR:MASTER_PORT and a ProcessGroupGloo over it.
// The variables are torchrun's (MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK), so cluster launchers that
// start torchrun jobs start kotsu workers too.
// Failures: a worker that does not join, dies or stops answering makes the collective calls of the others
// throw kotsu::Error within the timeout, naming what was lost; nothing waits forever.
#pragma once
#include <torch/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace kotsu {

struct DistConfig {
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  int world_size = 1;
  int rank = 0;
  std::chrono::milliseconds timeout{60000};  // joining, and each collective
  size_t bucket_bytes = size_t{25} << 20;     // gradient buckets (dist/grad_sync), as PyTorch DDP's default
};

// From the environment (torchrun's names, plus KOTSU_DIST_TIMEOUT in seconds and KOTSU_BUCKET_MB); a
// missing variable keeps the default, a malformed or out-of-range one is a kotsu::Error naming it.
DistConfig dist_config_from_env();

class ProcessGroup {
 public:
  // Joins the group; blocks until every worker has joined (kotsu::Error after the timeout).
  explicit ProcessGroup(const DistConfig& config);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const { return config_.rank; }
  int size() const { return config_.world_size; }
  size_t bucket_bytes() const { return config_.bucket_bytes; }
  // Every worker ends with rank `root`'s values (in place).
  void broadcast(std::vector<torch::Tensor>& tensors, int root = 0);
  // Returns when every worker has called it.
  void barrier();
  // Every worker ends with the element-wise sum (in place, one flat buffer per dtype).
  void all_reduce_sum(std::vector<torch::Tensor>& tensors);
  // Starts summing `flat` (one contiguous CPU tensor) over the workers in place and returns at once;
  // wait() on the handle returns when the sum is there (kotsu::Error when a worker was lost). Sums
  // must be started in the same order on every worker.
  class PendingSum {
   public:
    void wait();
    bool valid() const { return work_ != nullptr; }

   private:
    friend class ProcessGroup;
    struct Work;
    std::shared_ptr<Work> work_;
    const ProcessGroup* group_ = nullptr;
  };
  PendingSum start_sum(torch::Tensor flat);
  // Every worker ends with rank `root`'s bytes.
  void broadcast_bytes(std::string& bytes, int root = 0);
  // The rows of a matrix split over the workers by contiguous ranges: worker r holds rows
  // [offset_r, offset_r + mine.size(0)) of `total_rows`; every worker ends with the whole matrix (float32).
  torch::Tensor gather_rows(const torch::Tensor& mine, int64_t offset, int64_t total_rows);
  // The error a failed collective becomes: names this rank and, when it can be known, the lost one.
  [[noreturn]] void fail(const std::string& what, const std::exception& e) const;

 private:
  DistConfig config_;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kotsu
