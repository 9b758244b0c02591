#include "kotsu/train/progress.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

namespace kotsu {

Progress::Progress(bool quiet) : tty_(isatty(STDERR_FILENO) != 0), quiet_(quiet) {}

void Progress::start(const std::string& label, int64_t total_steps) {
  label_ = label;
  total_ = total_steps;
  examples_ = 0;
  t0_ = last_ = std::chrono::steady_clock::now();
}

void Progress::step(int64_t done, double loss, int64_t examples) {
  examples_ = examples;
  if (!tty_ || quiet_) return;
  auto now = std::chrono::steady_clock::now();
  if (done < total_ && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  double secs = std::chrono::duration<double>(now - t0_).count();
  double eta = done > 0 ? secs / static_cast<double>(done) * static_cast<double>(total_ - done) : 0;
  const int width = 24;
  int filled = total_ > 0 ? static_cast<int>(width * done / total_) : 0;
  std::string bar(static_cast<size_t>(filled), '#');
  bar += std::string(static_cast<size_t>(width - filled), '.');
  fmt::print(stderr, "\r{} [{}] {}/{} loss {:.4f} {:.0f} ex/s ETA {:.0f}s  ", label_, bar, done, total_, loss,
             secs > 0 ? static_cast<double>(examples) / secs : 0.0, eta);
  std::fflush(stderr);
  drawn_ = true;
}

void Progress::finish() {
  if (drawn_) {
    fmt::print(stderr, "\r{:80}\r", "");
    drawn_ = false;
  }
}

void Progress::log(const std::string& line) {
  finish();
  if (quiet_) return;
  fmt::print(stderr, "{}\n", line);
  std::fflush(stderr);
}

}  // namespace kotsu
