// Sparse optimizers applied in place to one row (fp32 math). Formulas, per coordinate
// i, after gradient preprocessing (clip the row's g to L2 norm <= clip_norm, then
// g += weight_decay * w):
//   SGD:             w -= lr * g
//   Adagrad:         a_i += g_i^2;              w_i -= lr * g_i / (sqrt(a_i) + eps)
//   Row-wise Adagrad a += sum(g^2) / dim;       w_i -= lr * g_i / (sqrt(a) + eps)
//   Adam:            m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
//                    w -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
//     adam_mode=lazy:    t = the row's update count including this one; nothing
//                        happens to a row in the steps it gets no gradient.
//     adam_mode=catchup: t = global_step + 1. First the k = t - t_last - 1 steps the
//                        row skipped since its last update t_last are replayed as dense
//                        Adam would run them with g = 0: step j moves
//                        w -= lr * r^j sqrt(1-b2^(t_last+j)) / (1-b1^(t_last+j)) * m / (sqrt(v) +
//                        eps) (r = b1 / sqrt(b2); j <= 128, later terms < 1.5e-6 of the first),
//                        then m *= b1^k, v *= b2^k. Exact dense Adam for a constant lr
//                        over the gap, up to where eps sits. A push with t <= t_last
//                        (asynchronous workers) skips no steps. A row's first update at a
//                        late step is corrected with that step's t, as dense Adam does
//                        for a row whose gradient was zero until then.
// Optimizer state is fp32: Adagrad a[dim]; row-wise a[1]; Adam m[dim], v[dim]
// (catchup: + t_last as uint32 bits in one float, 0 = never updated); FTRL z[dim], n[dim]. The
// accumulators a and n saturate at 2^100 instead of overflowing. State stays finite for gradients
// within kMaxGradientMagnitude and rates within kMaxLearningRate (common/numeric_bounds.h): callers
// refuse pushes beyond them (ps::ParameterServer, ps::LocalParams). Pure functions; thread-safe.
#ifndef TOWERPS_SPARSE_EMB_OPTIMIZER_H_
#define TOWERPS_SPARSE_EMB_OPTIMIZER_H_

#include <cstdint>

#include "sparse_emb/table_config.h"

namespace towerps::sparse_emb {

// Floats of optimizer state per row. The kind-only form is the layout of adam_mode=lazy.
int OptimizerStateFloats(const OptimizerConfig& config, int dim);
int OptimizerStateFloats(OptimizerKind kind, int dim);

// Writes the state of a new row (state: OptimizerStateFloats(config, dim)).
void InitOptimizerState(const OptimizerConfig& config, int dim, float* state);

// Applies one update to a row. w: dim (in/out), state: as above (in/out), grad: dim,
// scratch: dim floats the function may overwrite. `row_step` is the row's update count
// including this update (>= 1; lazy Adam's t); `global_step` the 0-based step of the
// push (>= 0; catch-up Adam's t - 1). lr > 0.
void ApplyOptimizer(const OptimizerConfig& config, int dim, float lr, uint32_t row_step,
                    int64_t global_step, const float* grad, float* scratch, float* w, float* state);

}  // namespace towerps::sparse_emb

#endif  // TOWERPS_SPARSE_EMB_OPTIMIZER_H_
