#include "kotsu/train/sampling.hpp"

#include <algorithm>
#include <map>
#include <numeric>

namespace kotsu {

namespace {
std::map<int64_t, std::vector<size_t>> by_class(const std::vector<int64_t>& targets) {
  std::map<int64_t, std::vector<size_t>> m;
  for (size_t i = 0; i < targets.size(); ++i) m[targets[i]].push_back(i);
  return m;
}
}  // namespace

size_t epoch_size(const std::vector<int64_t>& targets, const std::string& balance) {
  if (balance != "oversample" && balance != "undersample") return targets.size();
  size_t lo = SIZE_MAX, hi = 0;
  auto m = by_class(targets);
  for (auto& [c, v] : m) {
    lo = std::min(lo, v.size());
    hi = std::max(hi, v.size());
  }
  return m.size() * (balance == "oversample" ? hi : lo);
}

std::vector<size_t> epoch_order(const std::vector<int64_t>& targets, const std::string& balance, std::mt19937_64& rng) {
  std::vector<size_t> order;
  if (balance != "oversample" && balance != "undersample") {
    order.resize(targets.size());
    std::iota(order.begin(), order.end(), 0);
  } else {
    auto m = by_class(targets);
    const size_t per = epoch_size(targets, balance) / m.size();
    for (auto& [c, v] : m) {
      std::shuffle(v.begin(), v.end(), rng);
      if (balance == "undersample") {
        order.insert(order.end(), v.begin(), v.begin() + static_cast<long>(per));
      } else {
        order.insert(order.end(), v.begin(), v.end());
        std::uniform_int_distribution<size_t> pick(0, v.size() - 1);
        for (size_t k = v.size(); k < per; ++k) order.push_back(v[pick(rng)]);
      }
    }
  }
  std::shuffle(order.begin(), order.end(), rng);
  return order;
}

}  // namespace kotsu
