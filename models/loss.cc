#include "models/loss.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"

namespace towerps::models {
namespace {

template <typename T>
absl::Status ValidateBatch(const LossBatch<T>& b) {
  const Eigen::Index n = b.user.rows();
  const Eigen::Index d = b.user.cols();
  const Eigen::Index extra = b.extra_items.rows();
  auto bad = [](auto... parts) { return absl::InvalidArgumentError(absl::StrCat(parts...)); };
  if (n == 0 || d == 0) return bad("loss: empty batch (user is ", n, " x ", d, ")");
  if (b.item.rows() != n || b.item.cols() != d) {
    return bad("loss: item is ", b.item.rows(), " x ", b.item.cols(), ", user is ", n, " x ", d);
  }
  if (extra > 0 && b.extra_items.cols() != d) {
    return bad("loss: extra_items has ", b.extra_items.cols(), " columns, want ", d);
  }
  auto check_size = [&](size_t size, Eigen::Index want, const char* what) {
    return size == 0 || size == static_cast<size_t>(want)
               ? absl::OkStatus()
               : bad("loss: ", what, " has ", size, " entries, want ", want);
  };
  for (absl::Status s : {check_size(b.item_ids.size(), n, "item_ids"),
                         check_size(b.extra_item_ids.size(), extra, "extra_item_ids"),
                         check_size(b.item_log_q.size(), n, "item_log_q"),
                         check_size(b.extra_log_q.size(), extra, "extra_log_q"),
                         check_size(b.extra_owner.size(), extra, "extra_owner"),
                         check_size(b.weights.size(), n, "weights"),
                         check_size(b.labels.size(), n, "labels")}) {
    if (!s.ok()) return s;
  }
  for (int32_t owner : b.extra_owner) {
    if (owner < -1 || owner >= n) return bad("loss: an extra_owner is outside [-1, ", n, ")");
  }
  for (T w : b.weights) {
    if (!(w >= 0 && std::isfinite(w))) return bad("loss: a weight is negative or not finite");
  }
  for (T y : b.labels) {
    if (!(y >= 0 && y <= 1)) return bad("loss: a label is outside [0, 1]");
  }
  for (std::span<const T> lq : {b.item_log_q, b.extra_log_q}) {
    for (T v : lq) {
      if (!std::isfinite(v)) return bad("loss: a log q is not finite");
    }
  }
  return absl::OkStatus();
}

// log(1 + exp(z)) without overflow.
template <typename T>
T Softplus(T z) {
  return std::max(z, T(0)) + std::log1p(std::exp(-std::abs(z)));
}

template <typename T>
T Sigmoid(T z) {
  return T(1) / (T(1) + std::exp(-z));
}

}  // namespace

absl::StatusOr<LossKind> ParseLossKind(absl::string_view name) {
  if (name == "softmax") return LossKind::kSoftmax;
  if (name == "bce") return LossKind::kBce;
  return absl::InvalidArgumentError(absl::StrCat("unknown loss '", name, "' (softmax, bce)"));
}

absl::Status LossOptions::Validate() const {
  if (!(temperature > 0 && std::isfinite(temperature))) {
    return absl::InvalidArgumentError("loss: temperature must be > 0");
  }
  if (!(negative_weight >= 0 && std::isfinite(negative_weight))) {
    return absl::InvalidArgumentError("loss: negative_weight must be >= 0");
  }
  if (hard_negatives < 0 || hard_negatives > 65536) {
    return absl::InvalidArgumentError("loss: hard_negatives must be in 0..65536");
  }
  if (!(hard_weight >= 1 && std::isfinite(hard_weight))) {
    return absl::InvalidArgumentError("loss: hard_weight must be finite and >= 1");
  }
  if (kind == LossKind::kBce && hard_weight != 1) {
    return absl::InvalidArgumentError("loss: hard_weight != 1 needs kind=softmax");
  }
  return absl::OkStatus();
}

template <typename T>
absl::StatusOr<std::unique_ptr<RetrievalLoss<T>>> RetrievalLoss<T>::Create(
    const LossOptions& options) {
  absl::Status status = options.Validate();
  if (!status.ok()) return status;
  return std::unique_ptr<RetrievalLoss<T>>(new RetrievalLoss<T>(options));
}

template <typename T>
absl::StatusOr<double> RetrievalLoss<T>::Compute(const LossBatch<T>& batch) {
  absl::Status status = ValidateBatch(batch);
  if (!status.ok()) return status;
  batch_ = batch.user.rows();
  dim_ = batch.user.cols();
  const Eigen::Index extra = batch.extra_items.rows();
  const Eigen::Index cols = batch_ + extra;
  const T inv_temp = static_cast<T>(1.0 / options_.temperature);

  EnsureShape(cols, dim_, &items_);
  items_.topRows(batch_) = batch.item;
  if (extra > 0) items_.bottomRows(extra) = batch.extra_items;

  // z = U Items^T / temperature - log q (one GEMM over positives and extras).
  EnsureShape(batch_, cols, &logits_);
  logits_.noalias() = batch.user * items_.transpose();
  logits_ *= inv_temp;
  if (!batch.item_log_q.empty()) {
    logits_.leftCols(batch_).rowwise() -= ConstRowVecRef<T>(batch.item_log_q.data(), batch_);
  }
  if (!batch.extra_log_q.empty()) {
    logits_.rightCols(extra).rowwise() -= ConstRowVecRef<T>(batch.extra_log_q.data(), extra);
  }
  BuildMask(batch);
  for (const auto& [i, j] : masked_) logits_(i, j) = -std::numeric_limits<T>::infinity();
  if (options_.hard_negatives > 0) SelectHardNegatives();

  // d loss / d z per row, then d z / d S = 1 / temperature.
  EnsureShape(batch_, cols, &d_logits_);
  const double loss =
      options_.kind == LossKind::kSoftmax ? SoftmaxRows(batch) : BceRows(batch);
  for (const auto& [i, j] : masked_) d_logits_(i, j) = T(0);
  d_logits_ *= inv_temp;

  EnsureShape(batch_, dim_, &d_user_);
  EnsureShape(cols, dim_, &d_items_);
  d_user_.noalias() = d_logits_ * items_;
  d_items_.noalias() = d_logits_.transpose() * batch.user;
  return loss;
}

template <typename T>
void RetrievalLoss<T>::BuildMask(const LossBatch<T>& batch) {
  masked_.clear();
  // Per-row extras: column k belongs to its owner row alone.
  for (size_t k = 0; k < batch.extra_owner.size(); ++k) {
    const int32_t owner = batch.extra_owner[k];
    if (owner < 0) continue;
    for (Eigen::Index i = 0; i < batch_; ++i) {
      if (i != owner) masked_.emplace_back(i, batch_ + static_cast<Eigen::Index>(k));
    }
  }
  if (!options_.mask_duplicates || batch.item_ids.empty()) return;
  sorted_ids_.clear();
  for (Eigen::Index i = 0; i < batch_; ++i) sorted_ids_.emplace_back(batch.item_ids[i], i);
  std::sort(sorted_ids_.begin(), sorted_ids_.end());
  for (size_t start = 0; start < sorted_ids_.size();) {
    size_t end = start + 1;
    while (end < sorted_ids_.size() && sorted_ids_[end].first == sorted_ids_[start].first) ++end;
    for (size_t a = start; a < end; ++a) {
      for (size_t b = start; b < end; ++b) {
        if (a != b) masked_.emplace_back(sorted_ids_[a].second, sorted_ids_[b].second);
      }
    }
    start = end;
  }
  if (batch.extra_item_ids.empty()) return;
  sorted_extra_ids_.clear();
  for (size_t k = 0; k < batch.extra_item_ids.size(); ++k) {
    sorted_extra_ids_.emplace_back(batch.extra_item_ids[k], static_cast<int64_t>(k));
  }
  std::sort(sorted_extra_ids_.begin(), sorted_extra_ids_.end());
  for (Eigen::Index i = 0; i < batch_; ++i) {
    auto it = std::lower_bound(sorted_extra_ids_.begin(), sorted_extra_ids_.end(),
                               std::make_pair(batch.item_ids[i], int64_t{0}));
    for (; it != sorted_extra_ids_.end() && it->first == batch.item_ids[i]; ++it) {
      masked_.emplace_back(i, batch_ + it->second);
    }
  }
}

template <typename T>
void RetrievalLoss<T>::SelectHardNegatives() {
  const Eigen::Index cols = logits_.cols();
  const T boost = static_cast<T>(std::log(options_.hard_weight));
  for (Eigen::Index i = 0; i < batch_; ++i) {
    candidates_.clear();
    for (Eigen::Index j = 0; j < cols; ++j) {
      if (j != i && std::isfinite(logits_(i, j))) candidates_.push_back(j);
    }
    const size_t k = std::min(candidates_.size(), static_cast<size_t>(options_.hard_negatives));
    // Highest logit first; ties by column so the choice is deterministic.
    auto harder = [&](int64_t a, int64_t b) {
      return logits_(i, a) > logits_(i, b) || (logits_(i, a) == logits_(i, b) && a < b);
    };
    std::nth_element(candidates_.begin(), candidates_.begin() + k, candidates_.end(), harder);
    for (size_t c = 0; c < k; ++c) logits_(i, candidates_[c]) += boost;
    if (!options_.hard_only) continue;
    for (size_t c = k; c < candidates_.size(); ++c) {
      logits_(i, candidates_[c]) = -std::numeric_limits<T>::infinity();
      masked_.emplace_back(i, candidates_[c]);
    }
  }
}

template <typename T>
double RetrievalLoss<T>::SoftmaxRows(const LossBatch<T>& batch) {
  const T inv_b = T(1) / static_cast<T>(batch_);
  double loss = 0;
  for (Eigen::Index i = 0; i < batch_; ++i) {
    auto row = logits_.row(i);
    auto drow = d_logits_.row(i);
    T c = inv_b;
    if (!batch.weights.empty()) c *= batch.weights[i];
    if (!batch.labels.empty()) c *= batch.labels[i];
    if (c == T(0)) {
      drow.setZero();
      continue;
    }
    const T z_pos = row(i);
    const T max = row.maxCoeff();  // finite: the diagonal is never masked
    drow.array() = (row.array() - max).exp();
    const T sum = drow.sum();
    loss += static_cast<double>(c) * (max + std::log(sum) - z_pos);
    drow *= c / sum;
    drow(i) -= c;
  }
  return loss;
}

template <typename T>
double RetrievalLoss<T>::BceRows(const LossBatch<T>& batch) {
  const T inv_b = T(1) / static_cast<T>(batch_);
  const Eigen::Index cols = logits_.cols();
  double loss = 0;
  // Negatives per row: all columns but the diagonal, minus the masked ones.
  masked_per_row_.assign(batch_, 0);
  for (const auto& entry : masked_) ++masked_per_row_[entry.first];
  for (Eigen::Index i = 0; i < batch_; ++i) {
    auto row = logits_.row(i);
    auto drow = d_logits_.row(i);
    const T w = batch.weights.empty() ? T(1) : batch.weights[i];
    const T y = batch.labels.empty() ? T(1) : batch.labels[i];
    const T z_pos = row(i);
    const int64_t negatives = cols - 1 - masked_per_row_[i];
    const T lambda =
        negatives > 0 ? static_cast<T>(options_.negative_weight) / static_cast<T>(negatives)
                      : T(0);
    // Every column as a negative first (vectorised), then the diagonal fixed
    // up. Masked columns hold -inf: softplus(-inf) = 0 and sigmoid(-inf) = 0.
    auto z = row.array();
    double row_loss =
        lambda * ((z.max(T(0)) + (-z.abs()).exp().log1p()).sum() - Softplus(z_pos));
    drow.array() = (lambda * inv_b) / (T(1) + (-z).exp());
    row_loss += w * (y * Softplus(-z_pos) + (T(1) - y) * Softplus(z_pos));
    drow(i) = w * (Sigmoid(z_pos) - y) * inv_b;
    loss += row_loss * inv_b;
  }
  return loss;
}

template class RetrievalLoss<float>;
template class RetrievalLoss<double>;

double LogitsFlopsPerExample(int batch, int num_extra, int dim) {
  return 3.0 * 2.0 * (static_cast<double>(batch) + num_extra) * dim;
}

absl::Status EngagementMergeOptions::Validate() const {
  if (signal_weights.empty()) {
    return absl::InvalidArgumentError("engagement merge: no signal weights");
  }
  for (float w : signal_weights) {
    if (!(w >= 0 && std::isfinite(w))) {
      return absl::InvalidArgumentError("engagement merge: a signal weight is negative");
    }
  }
  if (!(negative_weight >= 0 && std::isfinite(negative_weight))) {
    return absl::InvalidArgumentError("engagement merge: negative_weight must be >= 0");
  }
  if (!(max_weight >= 0 && std::isfinite(max_weight))) {
    return absl::InvalidArgumentError("engagement merge: max_weight must be >= 0");
  }
  return absl::OkStatus();
}

absl::Status MergeEngagementSignals(const EngagementMergeOptions& options,
                                    std::span<const float> signals, std::span<float> labels,
                                    std::span<float> weights) {
  absl::Status status = options.Validate();
  if (!status.ok()) return status;
  const size_t s = options.signal_weights.size();
  const size_t n = labels.size();
  if (weights.size() != n || signals.size() != n * s) {
    return absl::InvalidArgumentError(absl::StrCat("engagement merge: ", signals.size(),
                                                   " signals, ", labels.size(), " labels, ",
                                                   weights.size(), " weights for ", s,
                                                   " signals per example"));
  }
  for (size_t i = 0; i < n; ++i) {
    double sum = 0;
    for (size_t k = 0; k < s; ++k) {
      const float v = signals[i * s + k];
      if (!(v >= 0 && std::isfinite(v))) {
        return absl::InvalidArgumentError(absl::StrCat("engagement merge: signal ", k,
                                                       " of example ", i,
                                                       " is negative or not finite"));
      }
      sum += static_cast<double>(options.signal_weights[k]) * v;
    }
    if (sum > 0) {
      labels[i] = 1.0f;
      weights[i] = options.max_weight > 0 ? std::min(static_cast<float>(sum), options.max_weight)
                                          : static_cast<float>(sum);
    } else {
      labels[i] = 0.0f;
      weights[i] = options.negative_weight;
    }
  }
  return absl::OkStatus();
}

}  // namespace towerps::models
