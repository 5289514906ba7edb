// CRC-32C (Castagnoli) for files and messages: checkpoints, example shards, manifests.
// Uses the SSE4.2 crc32 instruction when the CPU has it, a table otherwise; both
// give the same value. Thread-safe (pure functions).
#ifndef TOWERPS_COMMON_CHECKSUM_H_
#define TOWERPS_COMMON_CHECKSUM_H_

#include <cstddef>
#include <cstdint>
#include "absl/strings/string_view.h"

namespace towerps {

// Extends `crc` (the value returned for the bytes before) over `n` bytes.
// Crc32c(Crc32c(0, a), b) == Crc32c(0, a + b).
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t n);

inline uint32_t Crc32c(absl::string_view bytes) {
  return Crc32cExtend(0, bytes.data(), bytes.size());
}

}  // namespace towerps

#endif  // TOWERPS_COMMON_CHECKSUM_H_
