// Process-wide allocator settings, applied by main() before any thread starts.
#ifndef TOWERPS_COMMON_ALLOCATOR_H_
#define TOWERPS_COMMON_ALLOCATOR_H_

namespace towerps {

// Keeps glibc malloc from returning big blocks to the kernel between uses. Message
// frames of 100 KiB - 32 MiB are built, sent and freed every step; by default each
// one is a fresh mmap (or a heap grown after a trim), so every frame costs page
// faults on top of its bytes. With a fixed 32 MiB mmap threshold and a 512 MiB trim
// threshold such blocks are reused from the heap. Big long-lived memory (embedding
// slabs) is mmap'd directly and not affected. Returns false if glibc refused.
bool KeepLargeAllocationsInHeap();

}  // namespace towerps

#endif  // TOWERPS_COMMON_ALLOCATOR_H_
