#include "sparse_emb/row_layout.h"

#include <cstring>

namespace towerps::sparse_emb {
namespace {

template <float (*Decode)(uint16_t)>
void Decode16(const char* in, int dim, float* out) {
  for (int i = 0; i < dim; ++i) {
    uint16_t h;
    std::memcpy(&h, in + 2 * i, 2);
    out[i] = Decode(h);
  }
}

template <uint16_t (*Encode)(float)>
void Encode16(const float* in, int dim, char* out) {
  for (int i = 0; i < dim; ++i) {
    const uint16_t h = Encode(in[i]);
    std::memcpy(out + 2 * i, &h, 2);
  }
}

}  // namespace

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;
  uint32_t bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);  // inf / NaN
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;
  } else {
    // Subnormal half: normalise into an fp32 normal.
    int e = -1;
    do {
      ++e;
      mantissa <<= 1;
    } while ((mantissa & 0x400u) == 0);
    bits = sign | (static_cast<uint32_t>(112 - e) << 23) | ((mantissa & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t FloatToHalf(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7e00u;     // NaN
  if (abs >= 0x477ff000u) return sign | 0x7c00u;    // rounds to >= 65520: infinity
  if (abs >= 0x38800000u) {                          // normal half
    uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);
    return sign | static_cast<uint16_t>((rounded - 0x38000000u) >> 13);
  }
  if (abs < 0x33000000u) return sign;  // below half the smallest subnormal: zero
  // Subnormal half: shift the full mantissa into place with round to nearest even.
  const uint32_t exponent = abs >> 23;
  const uint32_t mantissa = (abs & 0x7fffffu) | 0x800000u;
  const uint32_t shift = 126 - exponent;  // 14..24
  uint32_t value = mantissa >> shift;
  const uint32_t rest = mantissa & ((1u << shift) - 1);
  const uint32_t half = 1u << (shift - 1);
  if (rest > half || (rest == half && (value & 1u))) ++value;
  return sign | static_cast<uint16_t>(value);
}

RowLayout::RowLayout(int dim_in, DType dtype_in, int state_floats_in)
    : dim(dim_in), dtype(dtype_in), state_floats(state_floats_in) {
  embedding_offset = kStateOffset + sizeof(float) * static_cast<size_t>(state_floats);
  size_t bytes = embedding_offset + static_cast<size_t>(DTypeBytes(dtype)) * dim;
  row_bytes = (bytes + 7) & ~size_t{7};
}

void RowLayout::ReadEmbedding(const char* row, float* out) const {
  const char* e = Embedding(row);
  switch (dtype) {
    case DType::kFp32:
      std::memcpy(out, e, sizeof(float) * dim);
      return;
    case DType::kFp16:
      Decode16<HalfToFloat>(e, dim, out);
      return;
    case DType::kBf16:
      Decode16<Bf16ToFloat>(e, dim, out);
      return;
  }
}

void RowLayout::WriteEmbedding(char* row, const float* in) const {
  char* e = Embedding(row);
  switch (dtype) {
    case DType::kFp32:
      std::memcpy(e, in, sizeof(float) * dim);
      return;
    case DType::kFp16:
      Encode16<FloatToHalf>(in, dim, e);
      return;
    case DType::kBf16:
      Encode16<FloatToBf16>(in, dim, e);
      return;
  }
}

}  // namespace towerps::sparse_emb
