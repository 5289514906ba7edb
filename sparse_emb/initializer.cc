#include "sparse_emb/initializer.h"

#include <cmath>

#include "sparse_emb/row_layout.h"

namespace towerps::sparse_emb {
namespace {

// The i-th 64-bit draw of the (seed, key) stream.
class Stream {
 public:
  Stream(uint64_t seed, uint64_t key)
      : base_(Mix64(seed ^ 0x6a09e667f3bcc909ULL) ^ Mix64(key + 0x3c6ef372fe94f82bULL)) {}
  uint64_t Next() { return Mix64(base_ + 0x9e3779b97f4a7c15ULL * ++counter_); }
  // Uniform in [0, 1) with 24 random bits (exact in fp32).
  float NextUnit() { return static_cast<float>(Next() >> 40) * (1.0f / 16777216.0f); }

 private:
  uint64_t base_;
  uint64_t counter_ = 0;
};

}  // namespace

void InitializeRow(const InitializerConfig& config, uint64_t key, int dim, float* out) {
  Stream stream(config.seed, key);
  switch (config.kind) {
    case InitKind::kZeros:
      for (int i = 0; i < dim; ++i) out[i] = 0.0f;
      return;
    case InitKind::kUniform:
      for (int i = 0; i < dim; ++i) out[i] = config.scale * (2.0f * stream.NextUnit() - 1.0f);
      return;
    case InitKind::kTruncatedNormal:
      for (int i = 0; i < dim; ++i) {
        // Box-Muller on doubles; one draw per value keeps the code simple (init is off
        // the hot path: once per row). Redraw outside +-2 sigma (P ~ 4.6%).
        double z;
        do {
          double u1 = (static_cast<double>(stream.Next() >> 11) + 1.0) * 0x1.0p-53;
          double u2 = static_cast<double>(stream.Next() >> 11) * 0x1.0p-53;
          z = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
        } while (z < -2.0 || z > 2.0);
        out[i] = static_cast<float>(z) * config.scale;
      }
      return;
  }
}

}  // namespace towerps::sparse_emb
