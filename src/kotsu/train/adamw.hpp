// kotsu/train/adamw: AdamW (decoupled weight decay, as torch.optim.AdamW) fused into one pass per tensor,
// with gradient-norm clipping folded into the same pass, and row-sparse parameters (word embeddings with
// sparse gradients) updated only on the rows the data touches.
// Exactness for row-sparse parameters: a row that has never had a gradient has m = v = 0, so dense AdamW
// only multiplies it by (1 - lr*wd) each step. Those factors are kept as one running product and applied
// to a row when it first appears (prepare(), before the forward pass that reads it) or to all such rows
// at flush() (before evaluating or saving). Rows seen once are updated every step like dense AdamW.
// So the weights equal dense AdamW's (tested) while a step costs O(rows seen) instead of O(vocabulary).
// Written by hand: libtorch's optimizers make several passes per tensor and have no such sparse path.
#pragma once
#include <torch/serialize/archive.h>
#include <torch/types.h>

#include <string>
#include <vector>

namespace kotsu {

class FusedAdamW {
 public:
  struct Options {
    double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  };
  // Each group: its parameters and weight decay. A parameter listed in `row_sparse` must be 2-D and
  // receive sparse (COO) gradients (Embedding with sparse=true); all others need dense gradients.
  struct Group {
    std::vector<torch::Tensor> params;
    double weight_decay = 0;
    double lr_scale = 1.0;  // this group's learning rate = lr * lr_scale (discriminative learning rates)
  };
  FusedAdamW(std::vector<Group> groups, std::vector<torch::Tensor> row_sparse, Options o);
  FusedAdamW(std::vector<Group> groups, std::vector<torch::Tensor> row_sparse) : FusedAdamW(std::move(groups), std::move(row_sparse), Options()) {}

  // Brings the rows `ids` of every row-sparse parameter up to date before a forward pass reads them.
  void prepare(const torch::Tensor& ids);
  // Clips the gradients' global norm to max_norm (0: no clipping), updates, and drops the gradients.
  // Returns the norm before clipping.
  double step(double lr, double max_norm);
  void zero_grad();
  // Brings every row of the row-sparse parameters up to date (before evaluation, saving or export).
  void flush();
  int64_t steps() const { return step_; }

  void save(torch::serialize::OutputArchive& ar) const;
  void load(torch::serialize::InputArchive& ar);
  // The same state as one byte string (what optimizer.pt holds; what data-parallel workers receive).
  std::string to_bytes() const;
  void from_bytes(const std::string& bytes);
  // Writes the same bytes as to_bytes() to `path` atomically, streamed: no copy of the state in memory
  // (the moments are twice the model's size; a byte string of them doubled a checkpoint's peak memory).
  void save_file(const std::string& path) const;
  // Reads a checkpoint's optimizer.pt; an unreadable or foreign file is a kotsu::Error naming it.
  void load_file(const std::string& path);

 private:
  struct Slot {
    torch::Tensor param, m, v;
    double weight_decay = 0;
    double lr_scale = 1.0;
    bool row_sparse = false;
    std::vector<uint8_t> active;      // row-sparse: has the row ever had a gradient or been prepared
    std::vector<int64_t> active_rows;  // the same rows, as a list
    double pending = 1.0;              // row-sparse: product of (1 - lr*wd) not yet applied to inactive rows
  };
  void activate(Slot& s, int64_t row);
  std::vector<Slot> slots_;
  Options o_;
  int64_t step_ = 0;
};

}  // namespace kotsu
