// Sparse optimizers applied in place to one row (fp32 math). Formulas, per coordinate
// i, after gradient preprocessing (clip the row's g to L2 norm <= clip_norm, then
// g += weight_decay * w):
//   SGD:             w -= lr * g
//   Adagrad:         a_i += g_i^2;              w_i -= lr * g_i / (sqrt(a_i) + eps)
//   Row-wise Adagrad a += sum(g^2) / dim;       w_i -= lr * g_i / (sqrt(a) + eps)
//   Adam (lazy):     t = the row's update count including this one;
//                    m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
//                    w -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
//   FTRL-Proximal:   sigma = (sqrt(n + g^2) - sqrt(n)) / lr;  z += g - sigma w;
//                    n += g^2;  w = |z| <= l1 ? 0 : -(z - sign(z) l1) / ((beta + sqrt(n)) / lr +
//                    l2)
// Optimizer state is fp32: Adagrad a[dim]; row-wise a[1]; Adam m[dim], v[dim];
// FTRL z[dim], n[dim]. The accumulators a and n saturate at 2^100 instead of
// overflowing. State stays finite for gradients within kMaxGradientMagnitude and rates
// within kMaxLearningRate (common/numeric_bounds.h): callers refuse pushes beyond them
// (ps::ParameterServer, ps::LocalParams). Pure functions; thread-safe.
#ifndef TOWERPS_SPARSE_EMB_OPTIMIZER_H_
#define TOWERPS_SPARSE_EMB_OPTIMIZER_H_

#include <cstdint>

#include "sparse_emb/table_config.h"

namespace towerps::sparse_emb {

// Floats of optimizer state per row.
int OptimizerStateFloats(OptimizerKind kind, int dim);

// Writes the state of a new row (state: OptimizerStateFloats(kind, dim)).
void InitOptimizerState(const OptimizerConfig& config, int dim, float* state);

// Applies one update to a row. w: dim (in/out), state: as above (in/out), grad: dim,
// scratch: dim floats the function may overwrite. `row_step` is the row's update count
// including this update (>= 1; used by Adam's bias correction). lr > 0.
void ApplyOptimizer(const OptimizerConfig& config, int dim, float lr, uint32_t row_step,
                    const float* grad, float* scratch, float* w, float* state);

}  // namespace towerps::sparse_emb

#endif  // TOWERPS_SPARSE_EMB_OPTIMIZER_H_
