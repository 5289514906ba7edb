#include "sparse_emb/row_store.h"

#include <sys/mman.h>

#include <cstring>
#include <utility>

#include "glog/logging.h"

namespace towerps::sparse_emb {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kSlabBytes = kHugePage;
constexpr uint64_t kInitialSlots = 64;

}  // namespace

PageBuffer::PageBuffer(size_t bytes, bool huge) : size_(bytes) {
  if (bytes == 0) return;
  // Over-map by one huge page and trim, so the region starts on a 2 MiB boundary and
  // the kernel can back it with huge pages.
  const size_t padded = bytes + kHugePage;
  void* raw = ::mmap(nullptr, padded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  PCHECK(raw != MAP_FAILED) << "sparse_emb: out of memory mapping " << bytes << " bytes";
  const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + kHugePage - 1) & ~(kHugePage - 1);
  const size_t mapped = (bytes + 4095) & ~size_t{4095};
  if (aligned > start) ::munmap(raw, aligned - start);
  const uintptr_t end = start + padded;
  if (end > aligned + mapped) ::munmap(reinterpret_cast<void*>(aligned + mapped), end - aligned - mapped);
  data_ = reinterpret_cast<char*>(aligned);
  if (huge) ::madvise(data_, mapped, MADV_HUGEPAGE);
}

PageBuffer::PageBuffer(PageBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

PageBuffer& PageBuffer::operator=(PageBuffer&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) ::munmap(data_, (size_ + 4095) & ~size_t{4095});
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

PageBuffer::~PageBuffer() {
  if (data_ != nullptr) ::munmap(data_, (size_ + 4095) & ~size_t{4095});
}

RowStore::RowStore(const RowLayout& layout)
    : layout_(layout),
      rows_per_slab_(static_cast<uint32_t>(kSlabBytes / layout.row_bytes)),
      id_bits_(0) {
  CHECK_GE(rows_per_slab_, 1u) << "row of " << layout.row_bytes << " bytes exceeds a slab";
  while ((1u << id_bits_) < rows_per_slab_) ++id_bits_;
  Clear();
}

void RowStore::Clear() {
  slabs_.clear();
  used_in_last_ = 0;
  free_ids_.clear();
  free_ids_.shrink_to_fit();
  index_ = PageBuffer(kInitialSlots * sizeof(Slot), /*huge=*/false);
  slots_ = reinterpret_cast<Slot*>(index_.data());
  mask_ = kInitialSlots - 1;
  size_ = 0;
}

size_t RowStore::MemoryBytes() const {
  return slabs_.size() * kSlabBytes + index_.size() + free_ids_.capacity() * sizeof(uint32_t);
}

uint32_t RowStore::AllocateRow() {
  if (!free_ids_.empty()) {
    uint32_t id = free_ids_.back();
    free_ids_.pop_back();
    return id;
  }
  if (slabs_.empty() || used_in_last_ == rows_per_slab_) {
    CHECK_LT(slabs_.size(), size_t{1} << (32 - id_bits_)) << "sparse_emb: stripe row id space full";
    slabs_.emplace_back(kSlabBytes, /*huge=*/!slabs_.empty());
    used_in_last_ = 0;
  }
  const uint32_t id = static_cast<uint32_t>(((slabs_.size() - 1) << id_bits_) | used_in_last_);
  ++used_in_last_;
  return id;
}

void RowStore::Grow() {
  const uint64_t old_slots = mask_ + 1;
  const uint64_t new_slots = old_slots * 2;
  PageBuffer bigger(new_slots * sizeof(Slot), new_slots * sizeof(Slot) >= kHugePage);
  Slot* dst = reinterpret_cast<Slot*>(bigger.data());
  const uint64_t new_mask = new_slots - 1;
  for (uint64_t i = 0; i < old_slots; ++i) {
    const Slot s = slots_[i];
    if (s.id_plus1 == 0) continue;
    uint64_t pos = s.tag & new_mask;
    while (dst[pos].id_plus1 != 0) pos = (pos + 1) & new_mask;
    dst[pos] = s;
  }
  index_ = std::move(bigger);
  slots_ = dst;
  mask_ = new_mask;
}

char* RowStore::Insert(uint64_t key, uint64_t hash) {
  if (static_cast<uint64_t>(size_ + 1) * 4 > (mask_ + 1) * 3) Grow();
  const uint32_t id = AllocateRow();
  const uint32_t tag = static_cast<uint32_t>(hash);
  uint64_t pos = tag & mask_;
  while (slots_[pos].id_plus1 != 0) pos = (pos + 1) & mask_;
  slots_[pos] = Slot{tag, id + 1};
  ++size_;
  char* row = RowById(id);
  RowLayout::SetKey(row, key);
  RowLayout::SetStep(row, 0);
  RowLayout::SetCountWord(row, 0);
  return row;
}

bool RowStore::Erase(uint64_t key, uint64_t hash) {
  const uint32_t tag = static_cast<uint32_t>(hash);
  uint64_t pos = tag & mask_;
  while (true) {
    const Slot& s = slots_[pos];
    if (s.id_plus1 == 0) return false;
    if (s.tag == tag && RowLayout::Key(RowById(s.id_plus1 - 1)) == key) break;
    pos = (pos + 1) & mask_;
  }
  const uint32_t id = slots_[pos].id_plus1 - 1;
  RowLayout::SetStep(RowById(id), RowLayout::kFreeStep);
  free_ids_.push_back(id);
  --size_;
  // Backward-shift deletion: pull later members of the probe run into the hole when
  // their home position is not cyclically within (hole, their position].
  uint64_t hole = pos;
  for (uint64_t next = (hole + 1) & mask_;; next = (next + 1) & mask_) {
    const Slot s = slots_[next];
    if (s.id_plus1 == 0) break;
    const uint64_t home = s.tag & mask_;
    const bool stays = ((next - home) & mask_) < ((next - hole) & mask_);
    if (!stays) {
      slots_[hole] = s;
      hole = next;
    }
  }
  slots_[hole] = Slot{0, 0};
  return true;
}

}  // namespace towerps::sparse_emb
