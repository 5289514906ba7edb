// Byte layout of one stored row and fp16/bf16 <-> fp32 conversion.
//
// A row is one contiguous record in a slab (rows are 8-byte aligned):
//   0  uint64  key
//   8  int64   last-touched step (kFreeStep marks a free row)
//   16 uint32  update count (bits 0..30, saturating) | dirty bit (bit 31: changed
//              since the last Save, for incremental snapshots)
//   20 float   optimizer state[state_floats]   (fp32 always)
//   .. value   embedding[dim]                   (fp32, fp16 or bf16)
// Pure functions and a value type; thread-safe.
#ifndef TOWERPS_SPARSE_EMB_ROW_LAYOUT_H_
#define TOWERPS_SPARSE_EMB_ROW_LAYOUT_H_

#include <cstdint>
#include <cstring>
#include <limits>

#include "common/hash.h"  // Mix64: stripe, index slot and sketch positions
#include "sparse_emb/table_config.h"

namespace towerps::sparse_emb {

inline float Bf16ToFloat(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round to nearest even; NaN stays NaN.
inline uint16_t FloatToBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

float HalfToFloat(uint16_t h);
// IEEE binary16, round to nearest even, overflow to infinity, subnormals kept.
uint16_t FloatToHalf(float f);

struct RowLayout {
  static constexpr int64_t kFreeStep = std::numeric_limits<int64_t>::min();
  static constexpr uint32_t kDirtyBit = 0x80000000u;
  static constexpr uint32_t kCountMask = 0x7fffffffu;
  static constexpr size_t kKeyOffset = 0;
  static constexpr size_t kStepOffset = 8;
  static constexpr size_t kCountOffset = 16;
  static constexpr size_t kStateOffset = 20;

  RowLayout() = default;
  RowLayout(int dim, DType dtype, int state_floats);

  int dim = 0;
  DType dtype = DType::kFp32;
  int state_floats = 0;
  size_t embedding_offset = 0;
  size_t row_bytes = 0;

  static uint64_t Key(const char* row) { return Load<uint64_t>(row + kKeyOffset); }
  static int64_t Step(const char* row) { return Load<int64_t>(row + kStepOffset); }
  static uint32_t CountWord(const char* row) { return Load<uint32_t>(row + kCountOffset); }
  static void SetKey(char* row, uint64_t key) { Store(row + kKeyOffset, key); }
  static void SetStep(char* row, int64_t step) { Store(row + kStepOffset, step); }
  static void SetCountWord(char* row, uint32_t word) { Store(row + kCountOffset, word); }
  static float* State(char* row) { return reinterpret_cast<float*>(row + kStateOffset); }
  static const float* State(const char* row) {
    return reinterpret_cast<const float*>(row + kStateOffset);
  }
  char* Embedding(char* row) const { return row + embedding_offset; }
  const char* Embedding(const char* row) const { return row + embedding_offset; }

  // Converts the stored embedding to fp32 (out: dim).
  void ReadEmbedding(const char* row, float* out) const;
  // Stores fp32 values (in: dim) in the row's dtype.
  void WriteEmbedding(char* row, const float* in) const;

 private:
  template <typename T>
  static T Load(const char* p) {
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
  }
  template <typename T>
  static void Store(char* p, T v) {
    std::memcpy(p, &v, sizeof(T));
  }
};

}  // namespace towerps::sparse_emb

#endif  // TOWERPS_SPARSE_EMB_ROW_LAYOUT_H_
