// The dense layers of a tower, each with Forward (caching what Backward needs)
// and Backward (input gradient into a layer-owned buffer, parameter gradients
// accumulated into the ParamStore's gradient buffer).
//
// Conventions shared by every layer here:
//   - B is the batch size; inputs and outputs are row-major B x features.
//   - Forward(x) returns a reference to the layer-owned output, valid until the
//     next Forward. The layer keeps a pointer to `x`: the caller must keep x
//     alive and unchanged until the matching Backward.
//   - Backward(dy) must follow a Forward with the same B; it returns the
//     layer-owned dx and ADDS the parameter gradients into the store
//     (ParamStore::ZeroGrads resets them).
//   - Buffers are resized only when B changes: a fixed batch size runs without
//     heap allocation after the first step. Large products go to BLAS
//     (EIGEN_USE_BLAS) as whole-batch GEMMs.
// Shape mismatches between calls are programmer errors (CHECK/DCHECK).
// Thread-compatible: one thread drives a layer; layers sharing a ParamStore
// must not run Backward concurrently.
#ifndef TOWERPS_MODELS_LAYERS_H_
#define TOWERPS_MODELS_LAYERS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "models/param_store.h"
#include "models/tensor.h"

namespace towerps::models {

// y = x W + b. W: in x out, b: 1 x out (parameters "<name>/w", "<name>/b").
template <typename T>
class Linear {
 public:
  Linear(ParamStore<T>* store, absl::string_view name, int in_dim, int out_dim);

  // Glorot-uniform W, zero b.
  void Init(uint64_t seed);
  // x: B x in -> B x out.
  const Mat<T>& Forward(ConstMatRef<T> x);
  // dy: B x out. Adds x^T dy to dW and colsum(dy) to db. Returns dx: B x in,
  // or an empty matrix when want_dx is false (saves one GEMM for a first layer
  // whose input needs no gradient).
  const Mat<T>& Backward(ConstMatRef<T> dy, bool want_dx = true);

  int in_dim() const { return in_dim_; }
  int out_dim() const { return out_dim_; }
  const ParamRef& weight() const { return w_; }
  const ParamRef& bias() const { return b_; }

 private:
  ParamStore<T>* store_;  // borrowed
  int in_dim_, out_dim_;
  ParamRef w_, b_;
  const T* x_ = nullptr;  // cached input, B x in
  Eigen::Index batch_ = 0;
  Mat<T> y_, dx_;
  Mat<T> empty_;  // returned by Backward(dy, false); keeps dx_'s buffer
};

enum class ActivationKind { kIdentity, kRelu, kSilu };

// Parses "identity" | "relu" | "silu"; InvalidArgument otherwise.
absl::StatusOr<ActivationKind> ParseActivation(absl::string_view name);
const char* ActivationName(ActivationKind kind);

// Elementwise activation. ReLU: max(x, 0) (gradient 0 at x = 0).
// SiLU: x * sigmoid(x), the smooth one. No parameters.
template <typename T>
class Activation {
 public:
  explicit Activation(ActivationKind kind) : kind_(kind) {}
  // x: B x n -> B x n.
  const Mat<T>& Forward(ConstMatRef<T> x);
  // dy: B x n -> dx: B x n.
  const Mat<T>& Backward(ConstMatRef<T> dy);
  ActivationKind kind() const { return kind_; }

 private:
  ActivationKind kind_;
  const T* x_ = nullptr;  // cached input, B x n
  Mat<T> y_, dx_;
};

// DCN-v2 cross layer: x_{l+1} = x0 * (x_l W + b) + x_l (elementwise *), with a
// full-rank W: d x d, b: 1 x d ("<name>/w", "<name>/b"). x0 and x_l: B x d.
template <typename T>
class CrossLayer {
 public:
  CrossLayer(ParamStore<T>* store, absl::string_view name, int dim);

  // W uniform in +-sqrt(6/(2d)) scaled by `w_scale` (small keeps the cross
  // branch near identity at the start), zero b.
  void Init(uint64_t seed, double w_scale = 0.5);
  // Both inputs B x d, kept alive by the caller until Backward. Returns B x d.
  const Mat<T>& Forward(ConstMatRef<T> x0, ConstMatRef<T> xl);
  // dy: B x d. Returns dx_l: B x d and ADDS dy * (x_l W + b) into *dx0_accum
  // (B x d, shaped by the caller).
  const Mat<T>& Backward(ConstMatRef<T> dy, Mat<T>* dx0_accum);

  int dim() const { return dim_; }

 private:
  ParamStore<T>* store_;  // borrowed
  int dim_;
  ParamRef w_, b_;
  const T* x0_ = nullptr;
  const T* xl_ = nullptr;
  Eigen::Index batch_ = 0;
  Mat<T> u_;  // x_l W + b, B x d
  Mat<T> y_, du_, dx_;
};

// Row-wise L2 normalisation: y_i = x_i / sqrt(|x_i|^2 + epsilon). epsilon > 0
// keeps zero rows finite (they map to zero).
template <typename T>
class L2Normalize {
 public:
  explicit L2Normalize(double epsilon = 1e-12) : epsilon_(epsilon) {}
  // x: B x d -> B x d.
  const Mat<T>& Forward(ConstMatRef<T> x);
  // dy: B x d -> dx = (dy - y (y . dy)) / n_i, B x d.
  const Mat<T>& Backward(ConstMatRef<T> dy);

 private:
  double epsilon_;
  ColVec<T> inv_norm_;  // B
  Mat<T> y_, dx_;
};

// Row-wise layer normalisation with a learned gain and shift:
//   y_i = gamma * (x_i - mean(x_i)) / sqrt(var(x_i) + epsilon) + beta
// gamma, beta: 1 x d ("<name>/gamma", "<name>/beta"). A constant row maps to beta.
template <typename T>
class LayerNorm {
 public:
  LayerNorm(ParamStore<T>* store, absl::string_view name, int dim, double epsilon = 1e-5);

  // gamma = 1, beta = 0.
  void Init();
  // x: N x d -> N x d (x is not kept: the normalised rows are cached instead).
  const Mat<T>& Forward(ConstMatRef<T> x);
  // dy: N x d. Adds colsum(dy * xhat) to dgamma and colsum(dy) to dbeta; returns
  // dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gamma.
  const Mat<T>& Backward(ConstMatRef<T> dy);

  int dim() const { return dim_; }

 private:
  ParamStore<T>* store_;  // borrowed
  int dim_;
  double epsilon_;
  ParamRef gamma_, beta_;
  ColVec<T> rstd_;  // N
  Mat<T> xhat_, y_, g_, dx_;
};

extern template class Linear<float>;
extern template class Linear<double>;
extern template class Activation<float>;
extern template class Activation<double>;
extern template class CrossLayer<float>;
extern template class CrossLayer<double>;
extern template class L2Normalize<float>;
extern template class L2Normalize<double>;
extern template class LayerNorm<float>;
extern template class LayerNorm<double>;

}  // namespace towerps::models

#endif  // TOWERPS_MODELS_LAYERS_H_
