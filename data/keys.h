// Stable 64-bit keys for raw ids and categorical values.
//
// Every raw id (user id, item id) and every categorical value becomes a uint64 by
// HashKey: FNV-1a over the bytes, then Mix64 (common/hash.h). The value
// never depends on the process, the platform or the run, so the same item has the
// same key in history, item_id and every dataset prepared from the same logs; ids
// with leading zeros ("0110912") stay distinct from "110912". The model hashes
// these keys again per table. Thread-safe (pure functions).
#ifndef TOWERPS_DATA_KEYS_H_
#define TOWERPS_DATA_KEYS_H_

#include <cstdint>

#include "absl/strings/string_view.h"
#include "common/hash.h"

namespace towerps::data {

// The key of a raw id or categorical value.
inline uint64_t HashKey(absl::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return Mix64(h ^ s.size());
}

// Combines two 64-bit values into one seed (for per-entity random streams).
inline uint64_t CombineSeeds(uint64_t a, uint64_t b) {
  return Mix64(a ^ (Mix64(b) + 0x9e3779b97f4a7c15ULL + (a << 6) + (a >> 2)));
}

}  // namespace towerps::data

#endif  // TOWERPS_DATA_KEYS_H_
