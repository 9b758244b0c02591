// kotsu/core/hash: the splitmix64 finaliser, a fast well-mixed 64-bit hash step (Steele et al. 2014), for
// MinHash and pixel fingerprints.
#pragma once
#include <cstdint>

namespace kotsu {

inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace kotsu
