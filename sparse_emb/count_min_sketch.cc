#include "sparse_emb/count_min_sketch.h"

#include <algorithm>

#include "sparse_emb/row_layout.h"

namespace towerps::sparse_emb {

CountMinSketch::CountMinSketch(int64_t width, int depth)
    : width_(width), depth_(depth), counters_(static_cast<size_t>(width * depth), 0) {}

void CountMinSketch::Positions(uint64_t key, int64_t* pos) const {
  // Double hashing from one independent 64-bit hash (Kirsch & Mitzenmacher).
  const uint64_t h = Mix64(key ^ 0xa0761d6478bd642fULL);
  const uint64_t h1 = h & 0xffffffffu;
  const uint64_t h2 = (h >> 32) | 1u;
  for (int j = 0; j < depth_; ++j) {
    pos[j] = j * width_ + static_cast<int64_t>((h1 + j * h2) % static_cast<uint64_t>(width_));
  }
}

int CountMinSketch::Add(uint64_t key) {
  if (width_ == 0) return 255;
  int64_t pos[8];
  Positions(key, pos);
  int current = 255;
  for (int j = 0; j < depth_; ++j) current = std::min<int>(current, counters_[pos[j]]);
  if (current == 255) return 255;
  // Conservative update: raise only the counters at the minimum.
  for (int j = 0; j < depth_; ++j) {
    if (counters_[pos[j]] == current) counters_[pos[j]] = static_cast<uint8_t>(current + 1);
  }
  return current + 1;
}

int CountMinSketch::Estimate(uint64_t key) const {
  if (width_ == 0) return 0;
  int64_t pos[8];
  Positions(key, pos);
  int current = 255;
  for (int j = 0; j < depth_; ++j) current = std::min<int>(current, counters_[pos[j]]);
  return current;
}

void CountMinSketch::Clear() { std::fill(counters_.begin(), counters_.end(), 0); }

}  // namespace towerps::sparse_emb
