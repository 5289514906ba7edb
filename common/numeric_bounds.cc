#include "common/numeric_bounds.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace towerps {
namespace {

std::string Subject(absl::string_view what, int64_t id) {
  return id >= 0 ? absl::StrCat(what, " ", id) : std::string(what);
}

}  // namespace

absl::Status CheckLearningRate(float lr, absl::string_view what, int64_t id) {
  if (lr > 0 && lr <= kMaxLearningRate) return absl::OkStatus();  // false for NaN
  return absl::InvalidArgumentError(absl::StrCat(Subject(what, id), ": learning rate ", lr,
                                                 " is not in (0, ", kMaxLearningRate, "]"));
}

absl::Status CheckGradients(absl::Span<const float> grads, absl::string_view what, int64_t id) {
  if (AllWithin(grads, kMaxGradientMagnitude)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      Subject(what, id), ": gradient holds NaN, Inf or a value beyond 2^32 in magnitude"));
}

}  // namespace towerps
