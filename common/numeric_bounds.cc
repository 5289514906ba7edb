#include "common/numeric_bounds.h"

#include "absl/strings/str_cat.h"

namespace towerps {

absl::Status CheckLearningRate(float lr, absl::string_view what) {
  if (lr > 0 && lr <= kMaxLearningRate) return absl::OkStatus();  // false for NaN
  return absl::InvalidArgumentError(
      absl::StrCat(what, ": learning rate ", lr, " is not in (0, ", kMaxLearningRate, "]"));
}

absl::Status CheckGradients(absl::Span<const float> grads, absl::string_view what) {
  if (AllWithin(grads, kMaxGradientMagnitude)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(what, ": gradient holds NaN, Inf or a value beyond 2^32 in magnitude"));
}

}  // namespace towerps
