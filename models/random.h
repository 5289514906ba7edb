// SplitMix64: a tiny deterministic generator for parameter initialisation and
// test data, identical on every platform (std:: distributions are not).
// Thread-compatible.
#ifndef TOWERPS_MODELS_RANDOM_H_
#define TOWERPS_MODELS_RANDOM_H_

#include <cstdint>

namespace towerps::models {

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}

  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1) with 53 random bits.
  double NextDouble() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  // Uniform integer in [0, n); n > 0.
  uint64_t NextBelow(uint64_t n) { return Next() % n; }

 private:
  uint64_t state_;
};

}  // namespace towerps::models

#endif  // TOWERPS_MODELS_RANDOM_H_
