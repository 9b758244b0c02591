// kotsu/train/schedule: the learning-rate multiplier at an optimizer step: linear warm-up over `warmup`
// steps, then linear decay to 0, cosine decay to 0, or constant, over the `total` steps.
#pragma once
#include <cstdint>
#include <string>

namespace kotsu {

double schedule_factor(const std::string& kind, int64_t step, int64_t total, int64_t warmup);

}  // namespace kotsu
