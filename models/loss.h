// Retrieval losses over a batch of B (user, positive item) pairs, with the
// other positives of the batch (and optionally N extra items) as negatives.
//
// Scores: z_ij = u_i . v_j / temperature - log q_j over the columns
// j = 0..B-1 (the batch's positive items) and B..B+N-1 (extra items, mixed
// negative sampling). log q_j is the log sampling probability of item j
// (logQ correction, from training frequency); absent means 0.
//
// Masking: when item_ids are given, a column j != i whose item is row i's own
// positive (the same item engaged twice in one batch, or an extra negative
// that happens to be the positive) is removed from row i: it is neither a
// negative nor a second positive. Masked logits read -inf; their gradient is 0.
//
// Per-row extras: when extra_owner is given, an extra column k with owner
// r = extra_owner[k] >= 0 is a negative of row r only (masked in every other row;
// mined hard negatives, worker/negative_miner.h); owner -1 is shared by all rows.
//
// kSoftmax (in-batch sampled softmax, the default):
//   loss = 1/B sum_i c_i (logsumexp_{j unmasked} z_ij - z_ii),  c_i = w_i y_i
// kBce (sigmoid + binary cross-entropy over in-batch pairs, Spotlight's):
//   loss = 1/B sum_i [ w_i (y_i sp(-z_ii) + (1 - y_i) sp(z_ii))
//                      + negative_weight / n_i sum_{j != i unmasked} sp(z_ij) ]
//   with sp = softplus and n_i the number of unmasked negatives of row i.
// Hard negatives (LossOptions::hard_negatives = K > 0): per row, the K unmasked
// negative columns with the highest corrected logits (in-batch and extra alike,
// chosen on this step's scores and treated as constants by the gradient) are
// up-weighted: kSoftmax multiplies their exp(z_ij) by hard_weight (z_ij += log W in
// logits()); with hard_only every other negative of the row is masked as well (for
// either loss), so a row keeps its positive and its K hardest negatives.
// w_i are per-example weights (default 1), y_i in [0, 1] labels (default 1);
// see MergeEngagementSignals for building both from engagement signals.
//
// Thread-compatible; workspaces are reused at a fixed (B, N, d).
#ifndef TOWERPS_MODELS_LOSS_H_
#define TOWERPS_MODELS_LOSS_H_

#include <cstdint>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "models/tensor.h"

namespace towerps::models {

enum class LossKind { kSoftmax, kBce };

// Parses "softmax" | "bce"; InvalidArgument otherwise.
absl::StatusOr<LossKind> ParseLossKind(absl::string_view name);

struct LossOptions {
  LossKind kind = LossKind::kSoftmax;
  // Divides every dot product (> 0). Embeddings are L2-normalised, so scores
  // are cosines in [-1, 1] and a small temperature sharpens them.
  double temperature = 0.05;
  // Mask duplicates of a row's positive among its negatives (needs item_ids).
  bool mask_duplicates = true;
  // kBce: the total weight of one row's negatives (>= 0), spread evenly.
  double negative_weight = 1.0;
  // Hard negatives per row (0 = off; 0..65536), their weight (finite, >= 1; kSoftmax
  // only when != 1) and whether the row's other negatives are dropped.
  int hard_negatives = 0;
  double hard_weight = 1.0;
  bool hard_only = false;

  absl::Status Validate() const;
};

// One batch, all borrowed for the duration of Compute(). The matrix views are
// set at construction (Eigen maps cannot be re-pointed by assignment).
template <typename T>
struct LossBatch {
  LossBatch() : LossBatch(ConstMatRef<T>(nullptr, 0, 0), ConstMatRef<T>(nullptr, 0, 0)) {}
  LossBatch(ConstMatRef<T> user_in, ConstMatRef<T> item_in,
            ConstMatRef<T> extra_in = ConstMatRef<T>(nullptr, 0, 0))
      : user(user_in), item(item_in), extra_items(extra_in) {}

  ConstMatRef<T> user;         // B x d
  ConstMatRef<T> item;         // B x d, row i = row i's positive
  ConstMatRef<T> extra_items;  // N x d extra negatives (N >= 0)
  std::span<const uint64_t> item_ids;         // B, or empty: no masking
  std::span<const uint64_t> extra_item_ids;   // N, or empty
  std::span<const T> item_log_q;              // B, or empty (0)
  std::span<const T> extra_log_q;             // N, or empty (0)
  std::span<const int32_t> extra_owner;       // N values in [-1, B), or empty (all -1)
  std::span<const T> weights;                 // B values >= 0, or empty (1)
  std::span<const T> labels;                  // B values in [0, 1], or empty (1)
};

template <typename T>
class RetrievalLoss {
 public:
  // InvalidArgument when options do not validate.
  static absl::StatusOr<std::unique_ptr<RetrievalLoss>> Create(const LossOptions& options);

  // Computes the loss and its gradients. InvalidArgument (nothing computed)
  // when shapes or span sizes disagree, B == 0, or a weight/label is out of
  // range.
  absl::StatusOr<double> Compute(const LossBatch<T>& batch);

  // Gradients of the last Compute: B x d, B x d, N x d.
  ConstMatRef<T> d_user() const { return View(d_user_); }
  ConstMatRef<T> d_item() const { return ConstMatRef<T>(d_items_.data(), batch_, dim_); }
  ConstMatRef<T> d_extra() const {
    return ConstMatRef<T>(d_items_.data() + batch_ * dim_, d_items_.rows() - batch_, dim_);
  }
  // d_item and d_extra stacked: (B + N) x d.
  ConstMatRef<T> d_items_all() const { return View(d_items_); }
  // The corrected logits z of the last Compute: B x (B + N), masked = -inf.
  ConstMatRef<T> logits() const { return View(logits_); }

  const LossOptions& options() const { return options_; }

 private:
  explicit RetrievalLoss(const LossOptions& options) : options_(options) {}
  void BuildMask(const LossBatch<T>& batch);
  double SoftmaxRows(const LossBatch<T>& batch);
  double BceRows(const LossBatch<T>& batch);
  void SelectHardNegatives();

  LossOptions options_;
  Eigen::Index batch_ = 0, dim_ = 0;
  Mat<T> items_;    // (B + N) x d: positives then extras
  Mat<T> logits_;   // B x (B + N)
  Mat<T> d_logits_; // B x (B + N), d loss / d (U Items^T)
  Mat<T> d_user_;   // B x d
  Mat<T> d_items_;  // (B + N) x d
  std::vector<std::pair<uint64_t, int64_t>> sorted_ids_, sorted_extra_ids_;
  std::vector<std::pair<int64_t, int64_t>> masked_;  // (row, column)
  std::vector<int64_t> masked_per_row_;               // B, kBce only
  std::vector<int64_t> candidates_;                   // B + N, hard negative selection
};

extern template class RetrievalLoss<float>;
extern template class RetrievalLoss<double>;

// GEMM FLOPs per example of the logits: forward U Items^T and backward
// dZ Items, dZ^T U, each 2 * (B + N) * d per example.
double LogitsFlopsPerExample(int batch, int num_extra, int dim);

// Merges several engagement signals (click, like, share, watch time ...) into
// one label and weight per example:
//   s_i = sum_k signal_weights[k] * signals[i, k]
//   label_i = 1 and weight_i = min(s_i, max_weight)  if s_i > 0
//   label_i = 0 and weight_i = negative_weight        otherwise
struct EngagementMergeOptions {
  std::vector<float> signal_weights;  // one per signal, each >= 0, at least one
  float negative_weight = 1.0f;       // >= 0
  float max_weight = 0.0f;            // > 0 caps the weight; 0 = no cap

  absl::Status Validate() const;
};

// signals: n x S row-major (S = signal_weights.size()); labels, weights: n.
// InvalidArgument when options do not validate, sizes disagree, or a signal is
// negative or not finite.
absl::Status MergeEngagementSignals(const EngagementMergeOptions& options,
                                    std::span<const float> signals, std::span<float> labels,
                                    std::span<float> weights);

}  // namespace towerps::models

#endif  // TOWERPS_MODELS_LOSS_H_
