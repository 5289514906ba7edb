// Software prefetch that the compiler keeps. GCC 12 at -O3 silently drops some
// __builtin_prefetch calls (seen in sparse_emb's batched walks: a whole loop's row
// prefetches vanished from the binary), so the hot paths issue the instruction with
// inline assembly, which the optimiser must leave in place. Thread-safe (pure).
#ifndef TOWERPS_COMMON_PREFETCH_H_
#define TOWERPS_COMMON_PREFETCH_H_

#include <cstddef>
#include <cstdint>

namespace towerps {

// Requests the cache line holding `p` into every cache level (prefetcht0). Never
// faults, whatever `p` is.
inline void PrefetchLine(const void* p) {
#if defined(__x86_64__) || defined(__i386__)
  asm volatile("prefetcht0 %0" : : "m"(*static_cast<const char*>(p)));
#else
  __builtin_prefetch(p);
#endif
}

// Prefetches every cache line overlapping [p, p + bytes).
inline void PrefetchRange(const void* p, size_t bytes) {
  const uintptr_t begin = reinterpret_cast<uintptr_t>(p) & ~uintptr_t{63};
  const uintptr_t end = reinterpret_cast<uintptr_t>(p) + bytes;
  for (uintptr_t line = begin; line < end; line += 64) {
    PrefetchLine(reinterpret_cast<const void*>(line));
  }
}

}  // namespace towerps

#endif  // TOWERPS_COMMON_PREFETCH_H_
