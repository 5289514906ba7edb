#include "common/allocator.h"

#include <malloc.h>

namespace towerps {

bool KeepLargeAllocationsInHeap() {
  // 32 MiB is glibc's upper bound for the mmap threshold on 64-bit systems.
  const bool mmap_ok = mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1;
  const bool trim_ok = mallopt(M_TRIM_THRESHOLD, 512 << 20) == 1;
  return mmap_ok && trim_ok;
}

}  // namespace towerps
