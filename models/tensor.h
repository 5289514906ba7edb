// Tensor conventions of models/: every activation, gradient and parameter is a
// row-major matrix, batch x features (one example per row). Parameters live in a
// ParamStore's flat buffer and are seen through Eigen::Map views of it.
//
// Shapes are documented in every header as `name: rows x cols`. All types here
// are plain aliases; thread-compatibility is that of Eigen.
#ifndef TOWERPS_MODELS_TENSOR_H_
#define TOWERPS_MODELS_TENSOR_H_

#include <Eigen/Core>

namespace towerps::models {

// Owned row-major matrix (a layer's cache or workspace).
template <typename T>
using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
// Owned row vector (biases, per-column reductions).
template <typename T>
using RowVec = Eigen::Matrix<T, 1, Eigen::Dynamic>;
// Owned column vector (per-example values).
template <typename T>
using ColVec = Eigen::Matrix<T, Eigen::Dynamic, 1>;

// Borrowed views. A `MatRef` may point into a ParamStore, a caller's buffer or
// an owned Mat; it never owns.
template <typename T>
using MatRef = Eigen::Map<Mat<T>>;
template <typename T>
using ConstMatRef = Eigen::Map<const Mat<T>>;
template <typename T>
using RowVecRef = Eigen::Map<RowVec<T>>;
template <typename T>
using ConstRowVecRef = Eigen::Map<const RowVec<T>>;

// A const view of a whole owned matrix.
template <typename T>
ConstMatRef<T> View(const Mat<T>& m) {
  return ConstMatRef<T>(m.data(), m.rows(), m.cols());
}

// Resizes `m` to rows x cols; a no-op (no allocation) when the shape is unchanged,
// which keeps the steady state of a fixed batch size allocation-free.
template <typename T>
void EnsureShape(Eigen::Index rows, Eigen::Index cols, Mat<T>* m) {
  if (m->rows() != rows || m->cols() != cols) m->resize(rows, cols);
}

}  // namespace towerps::models

#endif  // TOWERPS_MODELS_TENSOR_H_
