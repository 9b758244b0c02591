// kotsu/train/run_files: what a run starts from. The two files --resume reads (run.json: options, labels,
// history; trainer_state.json: where training stands); with data-parallel workers rank 0 reads them and
// every worker receives them, so workers on other machines need no copy of the run directory. And the
// weights and optimizer state every worker starts from: rank 0's.
#pragma once
#include <torch/types.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace kotsu {

class FusedAdamW;
class ProcessGroup;

struct RunFiles {
  std::string run_path, state_path;
  nlohmann::json run, state;
};

// kotsu::Error naming the directory when either file is missing or unreadable. pg: nullptr in one process.
RunFiles read_run_files(const std::string& run_dir, ProcessGroup* pg);

// Every worker ends with rank 0's `tensors` (in place) and optimizer state, after a fresh start or
// --resume (PyTorch DDP broadcasts the same way).
void start_from_rank0(ProcessGroup& pg, std::vector<torch::Tensor> tensors, FusedAdamW& opt);

}  // namespace kotsu
