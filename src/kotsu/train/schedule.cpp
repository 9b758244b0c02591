#include "kotsu/train/schedule.hpp"

#include <algorithm>
#include <cmath>

namespace kotsu {

double schedule_factor(const std::string& kind, int64_t step, int64_t total, int64_t warmup) {
  if (step < warmup) return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup));
  if (kind == "constant") return 1.0;
  double progress = static_cast<double>(step - warmup) / static_cast<double>(std::max<int64_t>(1, total - warmup));
  if (kind == "cosine") return std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * progress)));
  return std::max(0.0, 1.0 - progress);
}

}  // namespace kotsu
