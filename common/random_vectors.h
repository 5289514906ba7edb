// Random unit vectors for tests and benches: n rows of `dim` floats, each drawn
// N(0, 1) per coordinate (row-major, from one std::mt19937_64 seeded by `seed`) and
// L2-normalised. Deterministic for a seed on one standard library.
#ifndef TOWERPS_COMMON_RANDOM_VECTORS_H_
#define TOWERPS_COMMON_RANDOM_VECTORS_H_

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace towerps {

inline std::vector<float> RandomUnitRows(int64_t n, int dim, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> out(static_cast<size_t>(n) * dim);
  for (int64_t i = 0; i < n; ++i) {
    float* row = out.data() + i * dim;
    float norm = 0;
    for (int c = 0; c < dim; ++c) {
      row[c] = normal(rng);
      norm += row[c] * row[c];
    }
    for (int c = 0; c < dim; ++c) row[c] /= std::sqrt(norm);
  }
  return out;
}

}  // namespace towerps

#endif  // TOWERPS_COMMON_RANDOM_VECTORS_H_
