#include "sparse_emb/optimizer.h"

#include <algorithm>
#include <cmath>

namespace towerps::sparse_emb {
namespace {

// Accumulators of squared gradients saturate here instead of overflowing to Inf (which
// would freeze the row: every later step divides by it). Far beyond anything real
// training reaches (gradients are bounded by kMaxGradientMagnitude = 2^32, so one push
// adds at most 2^64); its square root, 2^50, keeps the update's denominator finite.
constexpr float kMaxAccumulator = 0x1p100f;

// Returns the gradient to use: `grad` itself when no preprocessing is configured,
// otherwise `scratch` holding clip(grad) + weight_decay * w.
const float* Preprocess(const OptimizerConfig& c, int dim, const float* grad, const float* w,
                        float* scratch) {
  if (c.clip_norm <= 0.0f && c.weight_decay <= 0.0f) return grad;
  float scale = 1.0f;
  if (c.clip_norm > 0.0f) {
    float sq = 0.0f;
    for (int i = 0; i < dim; ++i) sq += grad[i] * grad[i];
    float norm = std::sqrt(sq);
    if (norm > c.clip_norm) scale = c.clip_norm / norm;
  }
  for (int i = 0; i < dim; ++i) scratch[i] = grad[i] * scale + c.weight_decay * w[i];
  return scratch;
}

}  // namespace

int OptimizerStateFloats(OptimizerKind kind, int dim) {
  switch (kind) {
    case OptimizerKind::kSgd:
      return 0;
    case OptimizerKind::kAdagrad:
      return dim;
    case OptimizerKind::kRowwiseAdagrad:
      return 1;
    case OptimizerKind::kAdam:
    case OptimizerKind::kFtrl:
      return 2 * dim;
  }
  return 0;
}

void InitOptimizerState(const OptimizerConfig& config, int dim, float* state) {
  const int n = OptimizerStateFloats(config.kind, dim);
  float fill = 0.0f;
  if (config.kind == OptimizerKind::kAdagrad || config.kind == OptimizerKind::kRowwiseAdagrad) {
    fill = config.initial_accumulator;
  }
  for (int i = 0; i < n; ++i) state[i] = fill;
  if (config.kind == OptimizerKind::kFtrl) {
    for (int i = dim; i < 2 * dim; ++i) state[i] = config.initial_accumulator;  // n
  }
}

void ApplyOptimizer(const OptimizerConfig& c, int dim, float lr, uint32_t row_step,
                    const float* grad, float* scratch, float* w, float* state) {
  const float* g = Preprocess(c, dim, grad, w, scratch);
  switch (c.kind) {
    case OptimizerKind::kSgd:
      for (int i = 0; i < dim; ++i) w[i] -= lr * g[i];
      return;
    case OptimizerKind::kAdagrad:
      for (int i = 0; i < dim; ++i) {
        state[i] = std::min(state[i] + g[i] * g[i], kMaxAccumulator);
        w[i] -= lr * g[i] / (std::sqrt(state[i]) + c.epsilon);
      }
      return;
    case OptimizerKind::kRowwiseAdagrad: {
      float sq = 0.0f;
      for (int i = 0; i < dim; ++i) sq += g[i] * g[i];
      state[0] = std::min(state[0] + sq / static_cast<float>(dim), kMaxAccumulator);
      const float step = lr / (std::sqrt(state[0]) + c.epsilon);
      for (int i = 0; i < dim; ++i) w[i] -= step * g[i];
      return;
    }
    case OptimizerKind::kAdam: {
      float* m = state;
      float* v = state + dim;
      const double t = static_cast<double>(row_step);
      const float bc1 = static_cast<float>(1.0 - std::pow(static_cast<double>(c.beta1), t));
      const float bc2 = static_cast<float>(1.0 - std::pow(static_cast<double>(c.beta2), t));
      for (int i = 0; i < dim; ++i) {
        m[i] = c.beta1 * m[i] + (1.0f - c.beta1) * g[i];
        v[i] = c.beta2 * v[i] + (1.0f - c.beta2) * g[i] * g[i];
        w[i] -= lr * (m[i] / bc1) / (std::sqrt(v[i] / bc2) + c.epsilon);
      }
      return;
    }
    case OptimizerKind::kFtrl: {
      float* z = state;
      float* n = state + dim;
      for (int i = 0; i < dim; ++i) {
        const float n_new = std::min(n[i] + g[i] * g[i], kMaxAccumulator);
        const float sigma = (std::sqrt(n_new) - std::sqrt(n[i])) / lr;
        z[i] += g[i] - sigma * w[i];
        n[i] = n_new;
        if (std::fabs(z[i]) <= c.ftrl_l1) {
          w[i] = 0.0f;
        } else {
          const float sign = z[i] > 0.0f ? 1.0f : -1.0f;
          w[i] = -(z[i] - sign * c.ftrl_l1) / ((c.ftrl_beta + std::sqrt(n[i])) / lr + c.ftrl_l2);
        }
      }
      return;
    }
  }
}

}  // namespace towerps::sparse_emb
