// kotsu/train/run_files: what a run starts from. The two files --resume reads (run.json: options, labels,
// history; trainer_state.json: where training stands); with data-parallel workers rank 0 reads them and
// every worker receives them, so workers on other machines need no copy of the run directory. And the
// weights and optimizer state every worker starts from: rank 0's.
#pragma once
#include <torch/types.h>

#include <nlohmann/json.hpp>
#include <exception>
#include <string>
#include <vector>

namespace kotsu {

class FusedAdamW;
class ProcessGroup;

struct RunFiles {
  std::string run_path, state_path;
  nlohmann::json run, state;  // state: null when no checkpoint was completed (the run starts again)
};

// kotsu::Error naming the directory when run.json is missing or either file is unreadable. A run.json
// without trainer_state.json is a run that stopped before its first checkpoint was complete: `state` is
// null and the run starts again from the beginning with its options. pg: nullptr in one process.
RunFiles read_run_files(const std::string& run_dir, ProcessGroup* pg);

// The first line of an exception's message, without libtorch's backtrace (for run.json and logs).
std::string error_summary(const std::exception& e);

// Records in run.json that the run failed and why (status "failed", "error"), so that eval, predict,
// serve and --resume see what happened. Best effort (the disk may be full): false when it could not, or
// when the run has no run.json yet (it failed before it began).
bool mark_run_failed(const std::string& run_dir, const std::string& reason);

// train(), and if it throws, the failure recorded in run_dir's run.json (by the lead worker) before the
// exception goes on. Both trainers run their epochs through it.
template <class Train>
auto recording_failure(const std::string& run_dir, bool lead, Train&& train) -> decltype(train()) {
  try {
    return train();
  } catch (const std::exception& e) {
    if (lead) mark_run_failed(run_dir, error_summary(e));
    throw;
  }
}

// What --resume says when a run stopped before its first checkpoint was complete and starts again.
std::string restart_note(const std::string& run_dir, const nlohmann::json& run);

// What every (re)start of a run does first in its directory: removes the temporary files of atomic writes
// that a kill -9 cut short. Returns how many.
size_t clean_run_dir(const std::string& run_dir);

// Every worker ends with rank 0's `tensors` (in place) and optimizer state, after a fresh start or
// --resume (PyTorch DDP broadcasts the same way).
void start_from_rank0(ProcessGroup& pg, std::vector<torch::Tensor> tensors, FusedAdamW& opt);

}  // namespace kotsu
