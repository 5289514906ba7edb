#include "models/embedding_bag.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/prefetch.h"
#include "glog/logging.h"

namespace towerps::models {
namespace {

constexpr int64_t kPrefetchAhead = 8;

template <typename T>
absl::Status ValidateBags(const Bags<T>& bags, Eigen::Index num_rows) {
  if (bags.offsets.empty()) {
    return absl::InvalidArgumentError("EmbeddingBag: offsets must hold B + 1 >= 1 entries");
  }
  if (bags.offsets.front() != 0) {
    return absl::InvalidArgumentError("EmbeddingBag: offsets[0] must be 0");
  }
  const size_t b = bags.offsets.size() - 1;
  for (size_t i = 0; i < b; ++i) {
    if (bags.offsets[i + 1] < bags.offsets[i]) {
      return absl::InvalidArgumentError(
          absl::StrCat("EmbeddingBag: offsets decrease at example ", i));
    }
  }
  if (static_cast<size_t>(bags.offsets[b]) != bags.indices.size()) {
    return absl::InvalidArgumentError(absl::StrCat("EmbeddingBag: offsets end at ",
                                                   bags.offsets[b], " but there are ",
                                                   bags.indices.size(), " indices"));
  }
  if (!bags.weights.empty() && bags.weights.size() != bags.indices.size()) {
    return absl::InvalidArgumentError(absl::StrCat("EmbeddingBag: ", bags.weights.size(),
                                                   " weights for ", bags.indices.size(),
                                                   " indices"));
  }
  for (size_t k = 0; k < bags.indices.size(); ++k) {
    if (bags.indices[k] < 0 || bags.indices[k] >= num_rows) {
      return absl::InvalidArgumentError(absl::StrCat("EmbeddingBag: index ", bags.indices[k],
                                                     " at entry ", k, " outside [0, ",
                                                     num_rows, ")"));
    }
    if (!bags.weights.empty() && !(bags.weights[k] >= 0 && std::isfinite(bags.weights[k]))) {
      return absl::InvalidArgumentError(
          absl::StrCat("EmbeddingBag: weight at entry ", k, " is negative or not finite"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

template <typename T>
absl::Status EmbeddingBag<T>::Forward(ConstMatRef<T> rows, const Bags<T>& bags) {
  absl::Status status = ValidateBags(bags, rows.rows());
  if (!status.ok()) return status;
  bags_ = bags;
  num_rows_ = rows.rows();
  const size_t b = bags.offsets.size() - 1;
  scale_.resize(b);
  EnsureShape(static_cast<Eigen::Index>(b), rows.cols(), &pooled_);
  pooled_.setZero();
  const bool weighted = !bags.weights.empty();
  const int64_t nnz = static_cast<int64_t>(bags.indices.size());
  for (size_t i = 0; i < b; ++i) {
    T weight_sum = 0;
    auto out = pooled_.row(i);
    for (int64_t k = bags.offsets[i]; k < bags.offsets[i + 1]; ++k) {
      // Rows are gathered at random: fetch a few entries ahead.
      if (k + kPrefetchAhead < nnz) {
        PrefetchLine(rows.data() + bags.indices[k + kPrefetchAhead] * rows.cols());
      }
      const T w = weighted ? bags.weights[k] : T(1);
      if (w == T(0)) continue;
      out += w * rows.row(bags.indices[k]);
      weight_sum += w;
    }
    if (weight_sum == T(0)) {
      scale_[i] = T(0);
    } else {
      scale_[i] = pooling_ == Pooling::kMean ? T(1) / weight_sum : T(1);
      if (pooling_ == Pooling::kMean) out *= scale_[i];
    }
  }
  return absl::OkStatus();
}

template <typename T>
const Mat<T>& EmbeddingBag<T>::Backward(ConstMatRef<T> d_pooled) {
  const size_t b = scale_.size();
  CHECK_EQ(static_cast<size_t>(d_pooled.rows()), b);
  CHECK_EQ(d_pooled.cols(), pooled_.cols());
  EnsureShape(num_rows_, d_pooled.cols(), &d_rows_);
  d_rows_.setZero();
  const bool weighted = !bags_.weights.empty();
  for (size_t i = 0; i < b; ++i) {
    if (scale_[i] == T(0)) continue;
    for (int64_t k = bags_.offsets[i]; k < bags_.offsets[i + 1]; ++k) {
      const T w = weighted ? bags_.weights[k] : T(1);
      if (w == T(0)) continue;
      d_rows_.row(bags_.indices[k]) += (w * scale_[i]) * d_pooled.row(i);
    }
  }
  return d_rows_;
}

template class EmbeddingBag<float>;
template class EmbeddingBag<double>;

}  // namespace towerps::models
