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

// A CRC stored inside the data it protects must be masked (as LevelDB does): the
// CRC-32C of bytes followed by their own plain CRC is the same constant for every
// content, so a checksum over a whole file that embeds plain CRCs would not see most
// of the file. Masking (rotate, add) is not linear over GF(2), which breaks that.
inline uint32_t MaskCrc32c(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }
inline uint32_t UnmaskCrc32c(uint32_t masked) {
  const uint32_t rot = masked - 0xa282ead8u;
  return (rot >> 17) | (rot << 15);
}

}  // namespace towerps

#endif  // TOWERPS_COMMON_CHECKSUM_H_
