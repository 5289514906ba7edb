// TwoTower: the dense half of one training step of the two-tower model —
// user tower, item tower (positives and mixed negatives in one pass), the
// retrieval loss, and backward through all of it — over one ParamStore that
// holds every dense parameter ("user/..." then "item/...").
//
// The caller (embedded trainer, distributed worker) owns the sparse side: it
// pools embedding rows into the towers' input blocks, calls ForwardBackward,
// then pushes the input gradients back to the tables and hands
// params().grads() to a DenseOptimizer or a parameter server.
//
// Thread-compatible: one thread drives a TwoTower (replicate it per thread for
// data parallelism). Allocation-free after the first step at fixed B and N.
#ifndef TOWERPS_MODELS_TWO_TOWER_H_
#define TOWERPS_MODELS_TWO_TOWER_H_

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "models/attention.h"
#include "models/loss.h"
#include "models/param_store.h"
#include "models/tensor.h"
#include "models/tower.h"

namespace towerps::models {

// A user-tower input block computed by a SequenceEncoder (pooling=attention)
// instead of pooled by the caller: encoder.dim == user.input_dims[block].
struct UserSequenceConfig {
  int block = 0;
  SequenceEncoderConfig encoder;
};

// One batch's input of a UserSequenceConfig: B * L * d padded row values and B
// lengths in [0, L], laid out as SequenceEncoder::Forward takes them. Borrowed.
struct SequenceBatch {
  std::span<const float> rows;
  std::span<const int32_t> lengths;
};

struct TwoTowerConfig {
  TowerConfig user;
  TowerConfig item;
  LossOptions loss;
  // Encoders of the user side's sequence inputs (distinct blocks; parameters
  // "user/seq<k>/..." registered after the user tower's).
  std::vector<UserSequenceConfig> user_sequences;

  // InvalidArgument when a part does not validate, the towers' output dims
  // differ or a sequence does not fit its block.
  absl::Status Validate() const;
};

// GEMM FLOPs per example of one ForwardBackward with batch B, N extra items:
// both towers (the item tower over (B + N) / B rows per example) and the logits.
double TwoTowerFlopsPerExample(const TwoTowerConfig& config, int batch, int num_extra);

// The number of dense parameters (floats) of a tower or of the whole model, from the
// layer shapes alone (no allocation): TwoTower::Create(config)->params().size().
// `config` must validate.
uint64_t TowerDenseParamCount(const TowerConfig& config);
uint64_t DenseParamCount(const TwoTowerConfig& config);

// Per-example side information of a batch; all spans borrowed, sizes as in
// LossBatch (B for positives, N for extras; empty = default).
struct PairInfo {
  std::span<const uint64_t> item_ids;
  std::span<const uint64_t> extra_item_ids;
  std::span<const float> item_log_q;
  std::span<const float> extra_log_q;
  std::span<const float> weights;
  std::span<const float> labels;
  std::span<const int32_t> extra_owner;  // per-row extras (loss.h)
};

class TwoTower {
 public:
  static absl::StatusOr<std::unique_ptr<TwoTower>> Create(const TwoTowerConfig& config);

  // Initialises both towers from `seed`.
  void Init(uint64_t seed);

  // user_x0: B x D_user (concatenated user input blocks).
  // item_x0: (B + N) x D_item, the B positive items then N extra negatives.
  // Zeroes the gradient buffer, runs forward, loss and backward; returns the
  // loss. InvalidArgument when shapes or info sizes disagree (nothing changes).
  // With user_sequences configured, `sequences` holds one SequenceBatch per
  // sequence (config order) and the sequences' blocks of user_x0 are ignored
  // (their encoders' outputs take their place).
  absl::StatusOr<double> ForwardBackward(ConstMatRef<float> user_x0,
                                         ConstMatRef<float> item_x0, int num_extra,
                                         const PairInfo& info,
                                         std::span<const SequenceBatch> sequences = {});

  // Gradients of the last ForwardBackward with respect to the inputs:
  // B x D_user and (B + N) x D_item.
  const Mat<float>& user_input_grad() const { return user_->input_grad(); }
  const Mat<float>& item_input_grad() const { return item_->input_grad(); }

  // Gradient of the last ForwardBackward with respect to sequence k's rows:
  // (B * L) x d, zero on padding rows.
  const Mat<float>& sequence_input_grad(size_t k) const { return sequences_[k]->input_grad(); }

  // Inference: embeddings of users (B x D_user -> B x out) or items. InvalidArgument
  // when `sequences` does not match the config.
  absl::StatusOr<const Mat<float>*> EmbedUsers(ConstMatRef<float> user_x0,
                                               std::span<const SequenceBatch> sequences = {});
  const Mat<float>& EmbedItems(ConstMatRef<float> item_x0) { return item_->Forward(item_x0); }

  ParamStore<float>& params() { return params_; }
  const ParamStore<float>& params() const { return params_; }
  Tower<float>& user_tower() { return *user_; }
  Tower<float>& item_tower() { return *item_; }
  RetrievalLoss<float>& loss() { return *loss_; }
  const TwoTowerConfig& config() const { return config_; }

 private:
  explicit TwoTower(const TwoTowerConfig& config) : config_(config) {}
  // user_x0 with every sequence block replaced by its encoder's output (a copy in
  // user_x0_), or user_x0 itself without sequences.
  absl::StatusOr<ConstMatRef<float>> UserInput(ConstMatRef<float> user_x0,
                                               std::span<const SequenceBatch> sequences);

  TwoTowerConfig config_;
  ParamStore<float> params_;
  std::unique_ptr<Tower<float>> user_, item_;
  std::unique_ptr<RetrievalLoss<float>> loss_;
  std::vector<std::unique_ptr<SequenceEncoder<float>>> sequences_;
  Mat<float> user_x0_, d_sequence_;
};

}  // namespace towerps::models

#endif  // TOWERPS_MODELS_TWO_TOWER_H_
