#include "models/optimizer.h"

#include <algorithm>
#include <cmath>

#include <Eigen/Core>

#include "absl/strings/str_cat.h"

namespace towerps::models {
namespace {

using ArrayRef = Eigen::Map<Eigen::ArrayXf>;
using ConstArrayRef = Eigen::Map<const Eigen::ArrayXf>;
constexpr size_t kChunk = 2048;

}  // namespace

absl::StatusOr<DenseOptimizerKind> ParseDenseOptimizerKind(absl::string_view name) {
  if (name == "sgd") return DenseOptimizerKind::kSgd;
  if (name == "adam") return DenseOptimizerKind::kAdam;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown dense optimizer '", name, "' (sgd, adam)"));
}

absl::Status DenseOptimizerOptions::Validate() const {
  auto in_unit = [](float v) { return v >= 0.0f && v < 1.0f; };
  if (!in_unit(beta1)) return absl::InvalidArgumentError("optimizer: beta1 must be in [0, 1)");
  if (!in_unit(beta2)) return absl::InvalidArgumentError("optimizer: beta2 must be in [0, 1)");
  if (!(epsilon > 0 && std::isfinite(epsilon))) {
    return absl::InvalidArgumentError("optimizer: epsilon must be finite and > 0");
  }
  if (!in_unit(momentum)) {
    return absl::InvalidArgumentError("optimizer: momentum must be in [0, 1)");
  }
  if (!(weight_decay >= 0 && std::isfinite(weight_decay))) {
    return absl::InvalidArgumentError("optimizer: weight_decay must be >= 0");
  }
  if (!(clip_global_norm >= 0 && std::isfinite(clip_global_norm))) {
    return absl::InvalidArgumentError("optimizer: clip_global_norm must be >= 0");
  }
  return absl::OkStatus();
}

double GlobalNorm(std::span<const float> grads) {
  // Float sums of short chunks (vectorised by Eigen) accumulated in double:
  // a plain double loop is one serial add chain and ~10x slower.
  double sum = 0;
  for (size_t start = 0; start < grads.size(); start += kChunk) {
    const size_t n = std::min(kChunk, grads.size() - start);
    sum += ConstArrayRef(grads.data() + start, n).square().sum();
  }
  return std::sqrt(sum);
}

absl::StatusOr<std::unique_ptr<DenseOptimizer>> DenseOptimizer::Create(
    const DenseOptimizerOptions& options, size_t num_params) {
  absl::Status status = options.Validate();
  if (!status.ok()) return status;
  return std::unique_ptr<DenseOptimizer>(new DenseOptimizer(options, num_params));
}

DenseOptimizer::DenseOptimizer(const DenseOptimizerOptions& options, size_t num_params)
    : options_(options), num_params_(num_params) {
  size_t state_size = 0;
  if (options.kind == DenseOptimizerKind::kAdam) {
    state_size = 2 * num_params;
  } else if (options.momentum > 0) {
    state_size = num_params;
  }
  state_.assign(state_size, 0.0f);
}

absl::Status DenseOptimizer::RestoreState(int64_t step, std::span<const float> state) {
  if (state.size() != state_.size() || step < 0) {
    return absl::InvalidArgumentError(absl::StrCat("optimizer: state of ", state.size(),
                                                   " floats at step ", step, ", want ",
                                                   state_.size(), " floats, step >= 0"));
  }
  std::copy(state.begin(), state.end(), state_.begin());
  step_ = step;
  return absl::OkStatus();
}

absl::Status DenseOptimizer::Step(std::span<float> params, std::span<const float> grads,
                                  float lr) {
  if (params.size() != num_params_ || grads.size() != num_params_) {
    return absl::InvalidArgumentError(absl::StrCat("optimizer: ", params.size(), " params and ",
                                                   grads.size(), " grads, want ", num_params_));
  }
  if (!(lr >= 0 && std::isfinite(lr))) {
    return absl::InvalidArgumentError("optimizer: learning rate must be >= 0");
  }
  const double norm = GlobalNorm(grads);
  if (!std::isfinite(norm)) {
    return absl::FailedPreconditionError("optimizer: gradient is not finite; step skipped");
  }
  last_grad_norm_ = norm;
  const float scale = options_.clip_global_norm > 0 && norm > options_.clip_global_norm
                          ? static_cast<float>(options_.clip_global_norm / norm)
                          : 1.0f;
  ++step_;
  const float wd = options_.weight_decay;
  const size_t n = num_params_;
  // Chunks of kChunk floats keep every array of a chunk in L1 across the
  // vectorised Eigen statements below.
  for (size_t start = 0; start < n; start += kChunk) {
    const size_t len = std::min(kChunk, n - start);
    ArrayRef p(params.data() + start, len);
    ConstArrayRef g(grads.data() + start, len);
    if (options_.kind == DenseOptimizerKind::kAdam) {
      const float b1 = options_.beta1, b2 = options_.beta2, eps = options_.epsilon;
      const float c1 = 1.0f / static_cast<float>(1.0 - std::pow(double{b1}, step_));
      const float c2 = 1.0f / static_cast<float>(1.0 - std::pow(double{b2}, step_));
      ArrayRef m(state_.data() + start, len);
      ArrayRef v(state_.data() + n + start, len);
      m = b1 * m + ((1.0f - b1) * scale) * g;
      v = b2 * v + ((1.0f - b2) * scale * scale) * g.square();
      p -= lr * ((c1 * m) / ((c2 * v).sqrt() + eps) + wd * p);
    } else if (options_.momentum > 0) {
      ArrayRef m(state_.data() + start, len);
      m = options_.momentum * m + scale * g + wd * p;
      p -= lr * m;
    } else {
      p -= lr * (scale * g + wd * p);
    }
  }
  return absl::OkStatus();
}

}  // namespace towerps::models
