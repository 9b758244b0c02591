// kotsu/train/progress: a one-line progress bar (loss, examples/s, ETA) when stderr is a terminal,
// silence otherwise; epoch summaries are always printed as plain log lines.
#pragma once
#include <chrono>
#include <string>

namespace kotsu {

class Progress {
 public:
  explicit Progress(bool quiet = false);
  void start(const std::string& label, int64_t total_steps);
  void step(int64_t done, double loss, int64_t examples);
  void finish();
  void log(const std::string& line);  // a full line, clearing the bar first

 private:
  bool tty_, quiet_;
  std::string label_;
  int64_t total_ = 0, examples_ = 0;
  std::chrono::steady_clock::time_point t0_, last_;
  bool drawn_ = false;
};

}  // namespace kotsu
