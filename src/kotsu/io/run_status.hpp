// kotsu/io/run_status: how a run directory's training ended, from its run.json, so that the commands that
// use a run's model (eval, predict, serve, report) can say when it did not finish: a run that failed half
// way (a full disk), was killed, or is still training holds the best model of the epochs it finished, and
// answering from it silently would pass it off as the finished one.
#pragma once
#include <cstdint>
#include <string>

namespace kotsu {

struct RunStatus {
  bool is_run = false;     // the directory holds a run.json
  std::string status;      // "finished", "running" (training, or killed), "failed", "pruned", "unreadable"
  std::string error;       // status "failed": why
  int64_t epochs_done = 0;  // epochs in the history
  int64_t epochs = 0;       // epochs asked for
};

// Never throws: a directory without run.json is not a run; an unreadable run.json is status "unreadable".
RunStatus read_run_status(const std::string& dir);

// One line for the user ("" for a finished run or a plain model directory), for example
// "warning: runs/x did not finish (failed: ...): its model is the best of 1 of 5 epochs".
std::string unfinished_run_warning(const std::string& dir);

}  // namespace kotsu
