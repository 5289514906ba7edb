#include "sparse_emb/optimizer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

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

bool CatchUp(const OptimizerConfig& c) {
  return c.kind == OptimizerKind::kAdam && c.adam_mode == AdamMode::kCatchUp;
}

// Catch-up Adam's t_last lives in the float after m and v, as uint32 bits.
uint32_t LoadLastStep(const float* slot) {
  uint32_t t;
  std::memcpy(&t, slot, sizeof t);
  return t;
}
void StoreLastStep(uint32_t t, float* slot) { std::memcpy(slot, &t, sizeof t); }

// Skipped steps replayed one by one (a scalar each); later ones move the row by less
// than r^128 ~ 1.5e-6 of the first and are dropped.
constexpr uint32_t kMaxReplay = 128;

// Adam for step t; first, `skipped` zero-gradient steps after t_last = t - skipped - 1.
void Adam(const OptimizerConfig& c, int dim, float lr, uint32_t t, uint32_t skipped, const float* g,
          float* w, float* m, float* v) {
  const double b1 = c.beta1;
  const double b2 = c.beta2;
  if (skipped > 0) {
    // Step j of the gap moves w by lr r^j sqrt(bc2_j) / bc1_j * m / sqrt(v), r = b1/sqrt(b2).
    const uint32_t last = t - skipped - 1;
    double p1 = std::pow(b1, last);
    double p2 = std::pow(b2, last);
    const double r = b1 / std::sqrt(b2);
    double rj = 1.0;
    double sum = 0.0;
    for (uint32_t j = 1; j <= std::min(skipped, kMaxReplay); ++j) {
      p1 *= b1;
      p2 *= b2;
      rj *= r;
      sum += rj * std::sqrt(1.0 - p2) / (1.0 - p1);
    }
    const float step = static_cast<float>(lr * sum);
    const float d1 = static_cast<float>(std::pow(b1, skipped));
    const float d2 = static_cast<float>(std::pow(b2, skipped));
    for (int i = 0; i < dim; ++i) {
      w[i] -= step * m[i] / (std::sqrt(v[i]) + c.epsilon);
      m[i] *= d1;
      v[i] *= d2;
    }
  }
  const float bc1 = static_cast<float>(1.0 - std::pow(b1, static_cast<double>(t)));
  const float bc2 = static_cast<float>(1.0 - std::pow(b2, static_cast<double>(t)));
  for (int i = 0; i < dim; ++i) {
    m[i] = c.beta1 * m[i] + (1.0f - c.beta1) * g[i];
    v[i] = c.beta2 * v[i] + (1.0f - c.beta2) * g[i] * g[i];
    w[i] -= lr * (m[i] / bc1) / (std::sqrt(v[i] / bc2) + c.epsilon);
  }
}

}  // namespace

int OptimizerStateFloats(const OptimizerConfig& config, int dim) {
  return OptimizerStateFloats(config.kind, dim) + (CatchUp(config) ? 1 : 0);
}

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
  const int n = OptimizerStateFloats(config, dim);
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
                    int64_t global_step, const float* grad, float* scratch, float* w,
                    float* state) {
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
      if (c.adam_mode == AdamMode::kLazy) {
        Adam(c, dim, lr, std::max<uint32_t>(row_step, 1), 0, g, w, state, state + dim);
        return;
      }
      constexpr int64_t kMaxStep = std::numeric_limits<uint32_t>::max();
      const uint32_t t = static_cast<uint32_t>(std::clamp<int64_t>(global_step + 1, 1, kMaxStep));
      float* slot = state + 2 * dim;
      const uint32_t last = LoadLastStep(slot);
      const uint32_t skipped = last != 0 && t > last + 1 ? t - last - 1 : 0;
      Adam(c, dim, lr, t, skipped, g, w, state, state + dim);
      StoreLastStep(std::max(t, last), slot);
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
