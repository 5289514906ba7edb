#include "models/layers.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

// Whole-batch products must reach OpenBLAS sgemm, not Eigen's own kernels.
#ifndef EIGEN_USE_BLAS
#error "models/ must be compiled with EIGEN_USE_BLAS (see models/CMakeLists.txt)"
#endif

namespace towerps::models {
namespace {

// Copies the 1 x n row `bias` into every row of `out` (B x n). A row loop: each
// copy is a contiguous vectorised move, where replicate() is several times slower.
template <typename Bias, typename T>
void BroadcastRows(const Eigen::MatrixBase<Bias>& bias, Mat<T>* out) {
  for (Eigen::Index i = 0; i < out->rows(); ++i) out->row(i) = bias;
}

}  // namespace

// ---- Linear ----

template <typename T>
Linear<T>::Linear(ParamStore<T>* store, absl::string_view name, int in_dim, int out_dim)
    : store_(store), in_dim_(in_dim), out_dim_(out_dim) {
  CHECK(store != nullptr);
  w_ = store->Add(absl::StrCat(name, "/w"), in_dim, out_dim);
  b_ = store->Add(absl::StrCat(name, "/b"), 1, out_dim);
}

template <typename T>
void Linear<T>::Init(uint64_t seed) {
  store_->InitGlorot(w_, seed);
  store_->Value(b_).setZero();
}

template <typename T>
const Mat<T>& Linear<T>::Forward(ConstMatRef<T> x) {
  CHECK_EQ(x.cols(), in_dim_);
  x_ = x.data();
  batch_ = x.rows();
  EnsureShape(batch_, out_dim_, &y_);
  // Broadcast the bias first and let the GEMM accumulate onto it (beta = 1):
  // one pass over y instead of a zero fill plus a bias pass.
  BroadcastRows(store_->Value(b_), &y_);
  y_.noalias() += x * store_->Value(w_);
  return y_;
}

template <typename T>
const Mat<T>& Linear<T>::Backward(ConstMatRef<T> dy, bool want_dx) {
  CHECK_EQ(dy.rows(), batch_);
  CHECK_EQ(dy.cols(), out_dim_);
  ConstMatRef<T> x(x_, batch_, in_dim_);
  store_->Grad(w_).noalias() += x.transpose() * dy;
  store_->Grad(b_).noalias() += dy.colwise().sum();
  if (want_dx) {
    EnsureShape(batch_, in_dim_, &dx_);
    dx_.noalias() = dy * store_->Value(w_).transpose();
    return dx_;
  }
  return empty_;
}

// ---- Activation ----

absl::StatusOr<ActivationKind> ParseActivation(absl::string_view name) {
  if (name == "identity") return ActivationKind::kIdentity;
  if (name == "relu") return ActivationKind::kRelu;
  if (name == "silu") return ActivationKind::kSilu;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown activation '", name, "' (identity, relu, silu)"));
}

const char* ActivationName(ActivationKind kind) {
  switch (kind) {
    case ActivationKind::kIdentity:
      return "identity";
    case ActivationKind::kRelu:
      return "relu";
    case ActivationKind::kSilu:
      return "silu";
  }
  return "?";
}

template <typename T>
const Mat<T>& Activation<T>::Forward(ConstMatRef<T> x) {
  x_ = x.data();
  EnsureShape(x.rows(), x.cols(), &y_);
  switch (kind_) {
    case ActivationKind::kIdentity:
      y_ = x;
      break;
    case ActivationKind::kRelu:
      y_.array() = x.array().max(T(0));
      break;
    case ActivationKind::kSilu:
      y_.array() = x.array() / (T(1) + (-x.array()).exp());
      break;
  }
  return y_;
}

template <typename T>
const Mat<T>& Activation<T>::Backward(ConstMatRef<T> dy) {
  CHECK_EQ(dy.rows(), y_.rows());
  CHECK_EQ(dy.cols(), y_.cols());
  ConstMatRef<T> x(x_, y_.rows(), y_.cols());
  EnsureShape(dy.rows(), dy.cols(), &dx_);
  switch (kind_) {
    case ActivationKind::kIdentity:
      dx_ = dy;
      break;
    case ActivationKind::kRelu:
      dx_.array() = dy.array() * (x.array() > T(0)).template cast<T>();
      break;
    case ActivationKind::kSilu: {
      // d/dx [x s(x)] = s + x s (1 - s) = s + y (1 - s), with s = y / x
      // recomputed from x (no cache) to keep memory traffic at three arrays.
      auto s = T(1) / (T(1) + (-x.array()).exp());
      dx_.array() = dy.array() * (s + y_.array() * (T(1) - s));
      break;
    }
  }
  return dx_;
}

// ---- CrossLayer ----

template <typename T>
CrossLayer<T>::CrossLayer(ParamStore<T>* store, absl::string_view name, int dim)
    : store_(store), dim_(dim) {
  CHECK(store != nullptr);
  w_ = store->Add(absl::StrCat(name, "/w"), dim, dim);
  b_ = store->Add(absl::StrCat(name, "/b"), 1, dim);
}

template <typename T>
void CrossLayer<T>::Init(uint64_t seed, double w_scale) {
  store_->InitUniform(w_, w_scale * std::sqrt(6.0 / (2.0 * dim_)), seed);
  store_->Value(b_).setZero();
}

template <typename T>
const Mat<T>& CrossLayer<T>::Forward(ConstMatRef<T> x0, ConstMatRef<T> xl) {
  CHECK_EQ(x0.cols(), dim_);
  CHECK_EQ(xl.cols(), dim_);
  CHECK_EQ(x0.rows(), xl.rows());
  x0_ = x0.data();
  xl_ = xl.data();
  batch_ = x0.rows();
  EnsureShape(batch_, dim_, &u_);
  EnsureShape(batch_, dim_, &y_);
  BroadcastRows(store_->Value(b_), &u_);
  u_.noalias() += xl * store_->Value(w_);
  y_.array() = x0.array() * u_.array() + xl.array();
  return y_;
}

template <typename T>
const Mat<T>& CrossLayer<T>::Backward(ConstMatRef<T> dy, Mat<T>* dx0_accum) {
  CHECK_EQ(dy.rows(), batch_);
  CHECK_EQ(dy.cols(), dim_);
  CHECK(dx0_accum != nullptr);
  CHECK_EQ(dx0_accum->rows(), batch_);
  CHECK_EQ(dx0_accum->cols(), dim_);
  ConstMatRef<T> x0(x0_, batch_, dim_);
  ConstMatRef<T> xl(xl_, batch_, dim_);
  EnsureShape(batch_, dim_, &du_);
  EnsureShape(batch_, dim_, &dx_);
  du_.array() = dy.array() * x0.array();
  dx0_accum->array() += dy.array() * u_.array();
  store_->Grad(w_).noalias() += xl.transpose() * du_;
  store_->Grad(b_).noalias() += du_.colwise().sum();
  dx_ = dy;
  dx_.noalias() += du_ * store_->Value(w_).transpose();
  return dx_;
}

// ---- L2Normalize ----

template <typename T>
const Mat<T>& L2Normalize<T>::Forward(ConstMatRef<T> x) {
  const Eigen::Index b = x.rows();
  if (inv_norm_.size() != b) inv_norm_.resize(b);
  EnsureShape(b, x.cols(), &y_);
  inv_norm_.array() =
      (x.rowwise().squaredNorm().array() + static_cast<T>(epsilon_)).rsqrt();
  y_.noalias() = inv_norm_.asDiagonal() * x;
  return y_;
}

template <typename T>
const Mat<T>& L2Normalize<T>::Backward(ConstMatRef<T> dy) {
  CHECK_EQ(dy.rows(), y_.rows());
  CHECK_EQ(dy.cols(), y_.cols());
  EnsureShape(dy.rows(), dy.cols(), &dx_);
  for (Eigen::Index i = 0; i < dy.rows(); ++i) {
    const T dot = y_.row(i).dot(dy.row(i));
    dx_.row(i) = (dy.row(i) - dot * y_.row(i)) * inv_norm_(i);
  }
  return dx_;
}

// ---- LayerNorm ----

template <typename T>
LayerNorm<T>::LayerNorm(ParamStore<T>* store, absl::string_view name, int dim, double epsilon)
    : store_(store), dim_(dim), epsilon_(epsilon) {
  CHECK(store != nullptr);
  gamma_ = store->Add(absl::StrCat(name, "/gamma"), 1, dim);
  beta_ = store->Add(absl::StrCat(name, "/beta"), 1, dim);
}

template <typename T>
void LayerNorm<T>::Init() {
  store_->Value(gamma_).setOnes();
  store_->Value(beta_).setZero();
}

template <typename T>
const Mat<T>& LayerNorm<T>::Forward(ConstMatRef<T> x) {
  CHECK_EQ(x.cols(), dim_);
  const Eigen::Index n = x.rows();
  if (rstd_.size() != n) rstd_.resize(n);
  EnsureShape(n, dim_, &xhat_);
  EnsureShape(n, dim_, &y_);
  const T inv_d = T(1) / static_cast<T>(dim_);
  for (Eigen::Index i = 0; i < n; ++i) {
    const T mean = x.row(i).sum() * inv_d;
    xhat_.row(i).array() = x.row(i).array() - mean;
    const T var = xhat_.row(i).squaredNorm() * inv_d;
    rstd_(i) = T(1) / std::sqrt(var + static_cast<T>(epsilon_));
    xhat_.row(i) *= rstd_(i);
  }
  const auto gamma = store_->Value(gamma_);
  const auto beta = store_->Value(beta_);
  for (Eigen::Index i = 0; i < n; ++i) {
    y_.row(i).array() = xhat_.row(i).array() * gamma.array() + beta.array();
  }
  return y_;
}

template <typename T>
const Mat<T>& LayerNorm<T>::Backward(ConstMatRef<T> dy) {
  CHECK_EQ(dy.rows(), xhat_.rows());
  CHECK_EQ(dy.cols(), dim_);
  const Eigen::Index n = dy.rows();
  EnsureShape(n, dim_, &g_);
  EnsureShape(n, dim_, &dx_);
  auto dgamma = store_->Grad(gamma_);
  auto dbeta = store_->Grad(beta_);
  const auto gamma = store_->Value(gamma_);
  const T inv_d = T(1) / static_cast<T>(dim_);
  for (Eigen::Index i = 0; i < n; ++i) {
    dgamma.array() += dy.row(i).array() * xhat_.row(i).array();
    dbeta += dy.row(i);
    g_.row(i).array() = dy.row(i).array() * gamma.array();
    const T mean_g = g_.row(i).sum() * inv_d;
    const T mean_gx = g_.row(i).dot(xhat_.row(i)) * inv_d;
    dx_.row(i).array() =
        rstd_(i) * (g_.row(i).array() - mean_g - xhat_.row(i).array() * mean_gx);
  }
  return dx_;
}

template class Linear<float>;
template class Linear<double>;
template class Activation<float>;
template class Activation<double>;
template class CrossLayer<float>;
template class CrossLayer<double>;
template class L2Normalize<float>;
template class L2Normalize<double>;
template class LayerNorm<float>;
template class LayerNorm<double>;

}  // namespace towerps::models
