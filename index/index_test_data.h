// Test data for index/ tests: random unit vectors with distinct keys.
#ifndef TOWERPS_INDEX_INDEX_TEST_DATA_H_
#define TOWERPS_INDEX_INDEX_TEST_DATA_H_

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "absl/container/flat_hash_set.h"

namespace towerps::index {

// n random unit vectors of dim d and n distinct keys (half of them >= 2^63, i.e.
// negative as Faiss ids).
struct Data {
  int dim = 0;
  std::vector<uint64_t> keys;
  std::vector<float> vectors;
};

inline Data RandomData(int64_t n, int dim, uint64_t seed) {
  Data data;
  data.dim = dim;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  absl::flat_hash_set<uint64_t> seen;
  while (static_cast<int64_t>(data.keys.size()) < n) {
    uint64_t key = rng();
    if (key == ~uint64_t{0} || !seen.insert(key).second) continue;
    data.keys.push_back(key);
  }
  data.vectors.resize(n * dim);
  for (int64_t i = 0; i < n; ++i) {
    float norm = 0;
    for (int c = 0; c < dim; ++c) {
      float v = normal(rng);
      data.vectors[i * dim + c] = v;
      norm += v * v;
    }
    for (int c = 0; c < dim; ++c) data.vectors[i * dim + c] /= std::sqrt(norm);
  }
  return data;
}

}  // namespace towerps::index

#endif  // TOWERPS_INDEX_INDEX_TEST_DATA_H_
