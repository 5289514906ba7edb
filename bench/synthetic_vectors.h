// Synthetic embeddings for the index and serve benches: a mixture of Gaussian
// clusters (unit centres + noise, then L2-normalised) - closer to trained embeddings
// than i.i.d. Gaussians, which no graph index searches well.
#ifndef TOWERPS_BENCH_SYNTHETIC_VECTORS_H_
#define TOWERPS_BENCH_SYNTHETIC_VECTORS_H_

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "common/random_vectors.h"

namespace towerps::bench {

// `rows` normalised vectors (rows * dim): a random centre (RandomUnitRows of
// common/random_vectors.h) plus N(0, 0.6^2 / dim) noise.
inline std::vector<float> Clustered(int64_t rows, int dim, const std::vector<float>& centres,
                                    uint64_t seed) {
  const int clusters = static_cast<int>(centres.size() / dim);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> noise(0.0f, 0.6f);
  std::uniform_int_distribution<int> pick(0, clusters - 1);
  std::vector<float> out(rows * dim);
  for (int64_t r = 0; r < rows; ++r) {
    const float* centre = centres.data() + static_cast<int64_t>(pick(rng)) * dim;
    float norm = 0;
    for (int c = 0; c < dim; ++c) {
      float v = centre[c] + noise(rng) / std::sqrt(static_cast<float>(dim));
      out[r * dim + c] = v;
      norm += v * v;
    }
    for (int c = 0; c < dim; ++c) out[r * dim + c] /= std::sqrt(norm);
  }
  return out;
}

}  // namespace towerps::bench

#endif  // TOWERPS_BENCH_SYNTHETIC_VECTORS_H_
