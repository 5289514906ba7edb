// The project's one 64-bit mixer, for key hashing, sharding and striping.
// Thread-safe (pure functions).
#ifndef TOWERPS_COMMON_HASH_H_
#define TOWERPS_COMMON_HASH_H_

#include <cstdint>

namespace towerps {

// splitmix64's finaliser: a bijection on uint64 whose every output bit depends on
// every input bit. Stable across processes, platforms and runs (keys, shards and
// initial rows are derived from it, so changing it changes every checkpoint).
inline uint64_t Mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// Maps a uniformly mixed 64-bit value to [0, n) without a division (Lemire's
// multiply-shift range reduction).
inline uint32_t ReduceToRange(uint64_t mixed, uint32_t n) {
  return static_cast<uint32_t>((static_cast<unsigned __int128>(mixed) * n) >> 64);
}

}  // namespace towerps

#endif  // TOWERPS_COMMON_HASH_H_
