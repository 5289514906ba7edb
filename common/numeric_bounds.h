// Bounds on the floats that cross a trust boundary (model configs, the wire) and the
// checks that enforce them. The gradient bound keeps every optimizer's state finite:
// with |g| <= 2^32 a squared coordinate is <= 2^64, a row's sum of squares over the
// largest dim (1024) <= 2^74, and an accumulator would need 2^64 such pushes to reach
// 2^128 (FLT_MAX); accumulators also saturate (sparse_emb/optimizer.h). Real gradients
// are many orders of magnitude smaller: a value beyond the bound is a diverged or
// hostile pusher, and its push is refused whole.
// Thread-safe (pure functions).
#ifndef TOWERPS_COMMON_NUMERIC_BOUNDS_H_
#define TOWERPS_COMMON_NUMERIC_BOUNDS_H_

#include <cstdint>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace towerps {

// Largest accepted gradient coordinate, in absolute value.
inline constexpr float kMaxGradientMagnitude = 0x1p32f;
// Largest accepted learning rate (a config's base rate, or a rate on the wire).
inline constexpr float kMaxLearningRate = 1e3f;

// True when every value is finite and |v| <= bound (bound finite, >= 0). Branch-free on
// the bits (NaN and Inf compare above every finite magnitude), so the compiler
// vectorises it: a push's gradients are checked at memory speed.
inline bool AllWithin(absl::Span<const float> values, float bound) {
  uint32_t limit;
  std::memcpy(&limit, &bound, sizeof(limit));
  uint32_t bad = 0;
  for (float v : values) {
    uint32_t bits;
    std::memcpy(&bits, &v, sizeof(bits));
    bad |= static_cast<uint32_t>((bits & 0x7fffffffu) > limit);
  }
  return bad == 0;
}

// OK when lr is finite, > 0 and <= kMaxLearningRate; otherwise InvalidArgument
// "<what>[ <id>]: learning rate <lr> is not in (0, 1000]" (the id when >= 0; the
// message is built only on failure, so the check is cheap on a hot path).
absl::Status CheckLearningRate(float lr, absl::string_view what, int64_t id = -1);

// OK when every gradient value is within kMaxGradientMagnitude; otherwise
// InvalidArgument "<what>[ <id>]: gradient holds NaN, Inf or a value beyond 2^32".
absl::Status CheckGradients(absl::Span<const float> grads, absl::string_view what,
                            int64_t id = -1);

}  // namespace towerps

#endif  // TOWERPS_COMMON_NUMERIC_BOUNDS_H_
