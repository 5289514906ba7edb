// A count-min sketch with one-byte saturating counters and conservative update, used
// for feature admission: it remembers roughly how often each not-yet-admitted key was
// seen in O(width * depth) bytes, never under-counting (so a key with N sightings is
// admitted at the latest on its N-th sighting, possibly earlier on a collision).
// Thread-compatible (each table stripe owns one, under the stripe's lock).
#ifndef TOWERPS_SPARSE_EMB_COUNT_MIN_SKETCH_H_
#define TOWERPS_SPARSE_EMB_COUNT_MIN_SKETCH_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace towerps::sparse_emb {

class CountMinSketch {
 public:
  // width >= 1 counters per row, depth >= 1 rows. Width 0 makes an empty sketch
  // (admission off) whose Add always returns 255.
  CountMinSketch(int64_t width, int depth);

  // Records one sighting of `key`; returns its estimated count afterwards (<= 255).
  int Add(uint64_t key);
  // Estimated sightings of `key` (0..255).
  int Estimate(uint64_t key) const;
  void Clear();

  int64_t width() const { return width_; }
  int depth() const { return depth_; }
  // The counters, depth rows of width bytes; for snapshots.
  const std::vector<uint8_t>& counters() const { return counters_; }
  std::vector<uint8_t>& mutable_counters() { return counters_; }
  size_t MemoryBytes() const { return counters_.capacity(); }

 private:
  void Positions(uint64_t key, int64_t* pos) const;

  int64_t width_;
  int depth_;
  std::vector<uint8_t> counters_;
};

}  // namespace towerps::sparse_emb

#endif  // TOWERPS_SPARSE_EMB_COUNT_MIN_SKETCH_H_
