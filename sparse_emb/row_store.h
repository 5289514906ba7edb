// RowStore: the rows of one table stripe. Rows live in arena slabs (2 MiB, huge-page
// advised, never moved: a row pointer stays valid until the row is erased); the index
// is an open-addressing hash table with linear probing whose 8-byte slots hold the low
// 32 bits of Mix64(key) and the row id, so a probe touches the row only on a 32-bit
// match and growth (doubling at load 3/4) re-places slots without reading any row.
// Erase uses backward-shift deletion (no tombstones); freed rows are reused first.
//
// Thread-compatible: the owning stripe's mutex guards every call.
#ifndef TOWERPS_SPARSE_EMB_ROW_STORE_H_
#define TOWERPS_SPARSE_EMB_ROW_STORE_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/prefetch.h"
#include "sparse_emb/row_layout.h"

namespace towerps::sparse_emb {

// An anonymous mmap region, 2 MiB aligned, zero-filled; with `huge`, advised
// MADV_HUGEPAGE (fewer TLB misses on random gathers, but a touch commits 2 MiB, so a
// stripe's first slab and small indexes are not advised). Move-only.
class PageBuffer {
 public:
  PageBuffer() = default;
  // CHECK-fails when the kernel refuses the memory (out of memory).
  PageBuffer(size_t bytes, bool huge);
  PageBuffer(PageBuffer&& other) noexcept;
  PageBuffer& operator=(PageBuffer&& other) noexcept;
  PageBuffer(const PageBuffer&) = delete;
  PageBuffer& operator=(const PageBuffer&) = delete;
  ~PageBuffer();

  char* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  char* data_ = nullptr;
  size_t size_ = 0;
};

class RowStore {
 public:
  explicit RowStore(const RowLayout& layout);
  RowStore(RowStore&&) noexcept = default;
  RowStore& operator=(RowStore&&) noexcept = default;

  // The row of `key` or nullptr. hash = Mix64(key).
  char* Find(uint64_t key, uint64_t hash) const {
    const uint32_t tag = static_cast<uint32_t>(hash);
    for (uint64_t pos = tag & mask_;; pos = (pos + 1) & mask_) {
      const Slot& s = slots_[pos];
      if (s.id_plus1 == 0) return nullptr;
      if (s.tag == tag) {
        char* row = RowById(s.id_plus1 - 1);
        if (RowLayout::Key(row) == key) return row;
      }
    }
  }
  // The first row whose slot tag matches `hash` (maybe another key's), or nullptr: a
  // cheap guess, confirmed by the row's key, that a batched walk finds for a whole
  // group of keys before it reads any row.
  const char* Candidate(uint64_t hash) const {
    const uint32_t tag = static_cast<uint32_t>(hash);
    for (uint64_t pos = tag & mask_;; pos = (pos + 1) & mask_) {
      const Slot& s = slots_[pos];
      if (s.id_plus1 == 0) return nullptr;
      if (s.tag == tag) return RowById(s.id_plus1 - 1);
    }
  }
  // Prefetches the index slot `hash` starts probing at.
  void PrefetchSlot(uint64_t hash) const {
    PrefetchLine(&slots_[static_cast<uint32_t>(hash) & mask_]);
  }

  // Adds a row for `key`, which must be absent. The row has the key set, step 0 and
  // count word 0; the caller fills state and embedding. May grow the index.
  char* Insert(uint64_t key, uint64_t hash);
  // Removes `key`'s row; false if absent.
  bool Erase(uint64_t key, uint64_t hash);
  // Drops every row and frees the memory.
  void Clear();

  int64_t size() const { return size_; }
  size_t MemoryBytes() const;

  // Calls fn(row) for every live row in slab order. fn may Erase the row it is given.
  template <typename Fn>
  void ForEachRow(Fn&& fn) {
    for (size_t s = 0; s < slabs_.size(); ++s) {
      const uint32_t used = s + 1 == slabs_.size() ? used_in_last_ : rows_per_slab_;
      for (uint32_t i = 0; i < used; ++i) {
        char* row = slabs_[s].data() + static_cast<size_t>(i) * layout_.row_bytes;
        if (RowLayout::Step(row) != RowLayout::kFreeStep) fn(row);
      }
    }
  }
  // Slab-order cursor for resumable iteration: rows at positions [*cursor, ...) until
  // `max_rows` live rows were passed to fn or the end; returns false at the end.
  template <typename Fn>
  bool ForEachRowFrom(uint64_t* cursor, int64_t max_rows, Fn&& fn) {
    int64_t seen = 0;
    while (seen < max_rows) {
      const uint64_t s = *cursor / rows_per_slab_;
      const uint32_t i = static_cast<uint32_t>(*cursor % rows_per_slab_);
      if (s >= slabs_.size()) return false;
      const uint32_t used = s + 1 == slabs_.size() ? used_in_last_ : rows_per_slab_;
      if (i >= used) return false;
      char* row = slabs_[s].data() + static_cast<size_t>(i) * layout_.row_bytes;
      ++*cursor;
      if (RowLayout::Step(row) != RowLayout::kFreeStep) {
        fn(row);
        ++seen;
      }
    }
    return true;
  }

 private:
  struct Slot {
    uint32_t tag;       // low 32 bits of Mix64(key)
    uint32_t id_plus1;  // 0 = empty
  };
  // Row id = slab << id_bits_ | index in slab.
  char* RowById(uint32_t id) const {
    return slabs_[id >> id_bits_].data() +
           static_cast<size_t>(id & ((1u << id_bits_) - 1)) * layout_.row_bytes;
  }
  uint32_t AllocateRow();
  void Grow();

  RowLayout layout_;
  uint32_t rows_per_slab_;
  int id_bits_;
  std::vector<PageBuffer> slabs_;
  uint32_t used_in_last_ = 0;      // rows handed out from the last slab
  std::vector<uint32_t> free_ids_;  // erased rows, reused first
  PageBuffer index_;
  Slot* slots_ = nullptr;
  uint64_t mask_ = 0;
  int64_t size_ = 0;
};

}  // namespace towerps::sparse_emb

#endif  // TOWERPS_SPARSE_EMB_ROW_STORE_H_
