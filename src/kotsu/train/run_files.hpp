// kotsu/train/run_files: the two files --resume starts from (run.json: options, labels, history;
// trainer_state.json: where training stands). With data-parallel workers rank 0 reads them and every
// worker receives them, so workers on other machines need no copy of the run directory.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace kotsu {

class ProcessGroup;

struct RunFiles {
  std::string run_path, state_path;
  nlohmann::json run, state;
};

// kotsu::Error naming the directory when either file is missing or unreadable. pg: nullptr in one process.
RunFiles read_run_files(const std::string& run_dir, ProcessGroup* pg);

}  // namespace kotsu
