// Dense optimizers over one flat float array (ParamStore::values() of all
// dense parameters, or a parameter server's dense shard) and its gradient.
//
//   clipping:  g <- g * min(1, clip_global_norm / ||g||_2)  (when clip > 0)
//   kSgd:      g <- g + weight_decay * p             (coupled L2, as SGD does)
//              m <- momentum * m + g;  p <- p - lr * m   (m = g when momentum 0)
//   kAdam:     m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
//              p <- p - lr * (m / (1 - b1^t) / (sqrt(v / (1 - b2^t)) + eps)
//                             + weight_decay * p)   (decoupled, AdamW)
// t counts Step() calls from 1.
//
// Thread-compatible. Step allocates nothing.
#ifndef TOWERPS_MODELS_OPTIMIZER_H_
#define TOWERPS_MODELS_OPTIMIZER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace towerps::models {

enum class DenseOptimizerKind { kSgd, kAdam };

// Parses "sgd" | "adam"; InvalidArgument otherwise.
absl::StatusOr<DenseOptimizerKind> ParseDenseOptimizerKind(absl::string_view name);

struct DenseOptimizerOptions {
  DenseOptimizerKind kind = DenseOptimizerKind::kAdam;
  // Adam moments' decay rates, each in [0, 1).
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  // Adam denominator epsilon (> 0).
  float epsilon = 1e-8f;
  // SGD momentum in [0, 1); 0 = plain SGD.
  float momentum = 0.0f;
  // Weight decay (>= 0): decoupled for Adam, L2 on the gradient for SGD.
  float weight_decay = 0.0f;
  // Clips the gradient to this global L2 norm (> 0); 0 = no clipping.
  float clip_global_norm = 0.0f;

  absl::Status Validate() const;
};

class DenseOptimizer {
 public:
  // InvalidArgument when options do not validate. num_params: the array size.
  static absl::StatusOr<std::unique_ptr<DenseOptimizer>> Create(
      const DenseOptimizerOptions& options, size_t num_params);

  // One update at learning rate lr (>= 0). params, grads: num_params each.
  // InvalidArgument on a size mismatch or a negative lr; FailedPrecondition
  // when the gradient holds NaN/Inf (the step is skipped, nothing changes).
  absl::Status Step(std::span<float> params, std::span<const float> grads, float lr);

  // Steps taken so far (t).
  int64_t step() const { return step_; }
  // The gradient's global L2 norm before clipping, of the last Step.
  double last_grad_norm() const { return last_grad_norm_; }

  // Optimizer state for checkpoints: Adam m then v (2 * num_params), SGD
  // momentum (num_params, or empty without momentum). Restore with
  // RestoreState; InvalidArgument when the size differs.
  std::span<const float> state() const { return state_; }
  absl::Status RestoreState(int64_t step, std::span<const float> state);

  const DenseOptimizerOptions& options() const { return options_; }
  size_t num_params() const { return num_params_; }

 private:
  DenseOptimizer(const DenseOptimizerOptions& options, size_t num_params);

  DenseOptimizerOptions options_;
  size_t num_params_;
  int64_t step_ = 0;
  double last_grad_norm_ = 0;
  std::vector<float> state_;
};

// Global L2 norm of a flat gradient, accumulated in double.
double GlobalNorm(std::span<const float> grads);

}  // namespace towerps::models

#endif  // TOWERPS_MODELS_OPTIMIZER_H_
