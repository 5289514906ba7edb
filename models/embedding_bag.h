// EmbeddingBag: pools variable-length lists of embedding rows (a user's
// history of item ids, a multi-valued categorical feature) into one vector per
// example, and scatters the pooled gradient back onto the rows.
//
// The caller pulls the U unique rows a batch touches from a sparse table into
// `rows` (U x dim) and describes each example's list in CSR form over them:
// example b owns entries [offsets[b], offsets[b+1]) of `indices` (row numbers in
// `rows`) and of the optional `weights`. With weights w (all 1 when absent; 0
// masks an entry out):
//   kMean: pooled_b = sum_k w_k rows[idx_k] / sum_k w_k
//   kSum:  pooled_b = sum_k w_k rows[idx_k]
// A plain embedding lookup is a bag of exactly one entry per example.
// An empty list, or one whose weights sum to 0, pools to zeros (and sends no
// gradient). Backward: d_rows[idx_k] += w_k * scale_b * d_pooled_b, where
// scale_b = 1 / sum_k w_k (kMean) or 1 (kSum); rows of `rows` no list uses get
// zero gradient.
//
// Thread-compatible. Buffers are reused across calls with the same B, U, dim.
#ifndef TOWERPS_MODELS_EMBEDDING_BAG_H_
#define TOWERPS_MODELS_EMBEDDING_BAG_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "models/tensor.h"

namespace towerps::models {

enum class Pooling { kMean, kSum };

// CSR lists of a batch of B examples. All spans are borrowed; they must stay
// valid from Forward until the matching Backward.
template <typename T>
struct Bags {
  std::span<const int64_t> offsets;  // B + 1, offsets[0] = 0, non-decreasing
  std::span<const int32_t> indices;  // offsets[B], each in [0, U)
  std::span<const T> weights;        // offsets[B] values >= 0, or empty (all 1)
};

template <typename T>
class EmbeddingBag {
 public:
  explicit EmbeddingBag(Pooling pooling = Pooling::kMean) : pooling_(pooling) {}

  // rows: U x dim. Pools into output(): B x dim (B = offsets.size() - 1).
  // InvalidArgument when the CSR is malformed (offsets not starting at 0, not
  // non-decreasing or not ending at indices.size(), an index outside [0, U),
  // weights of the wrong length, a negative or non-finite weight); nothing is
  // computed then.
  absl::Status Forward(ConstMatRef<T> rows, const Bags<T>& bags);
  const Mat<T>& output() const { return pooled_; }

  // d_pooled: B x dim. Returns d_rows: U x dim (overwritten, not accumulated).
  const Mat<T>& Backward(ConstMatRef<T> d_pooled);

 private:
  Pooling pooling_;
  Bags<T> bags_;                 // cached by Forward
  Eigen::Index num_rows_ = 0;    // U
  std::vector<T> scale_;         // B: 1 / sum w, or 0 for an empty list
  Mat<T> pooled_, d_rows_;
};

extern template class EmbeddingBag<float>;
extern template class EmbeddingBag<double>;

}  // namespace towerps::models

#endif  // TOWERPS_MODELS_EMBEDDING_BAG_H_
