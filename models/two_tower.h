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

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "models/loss.h"
#include "models/param_store.h"
#include "models/tensor.h"
#include "models/tower.h"

namespace towerps::models {

struct TwoTowerConfig {
  TowerConfig user;
  TowerConfig item;
  LossOptions loss;

  // InvalidArgument when a part does not validate or the towers' output dims
  // differ.
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
  absl::StatusOr<double> ForwardBackward(ConstMatRef<float> user_x0,
                                         ConstMatRef<float> item_x0, int num_extra,
                                         const PairInfo& info);

  // Gradients of the last ForwardBackward with respect to the inputs:
  // B x D_user and (B + N) x D_item.
  const Mat<float>& user_input_grad() const { return user_->input_grad(); }
  const Mat<float>& item_input_grad() const { return item_->input_grad(); }

  // Inference: embeddings of users (B x D_user -> B x out) or items.
  const Mat<float>& EmbedUsers(ConstMatRef<float> user_x0) { return user_->Forward(user_x0); }
  const Mat<float>& EmbedItems(ConstMatRef<float> item_x0) { return item_->Forward(item_x0); }

  ParamStore<float>& params() { return params_; }
  const ParamStore<float>& params() const { return params_; }
  Tower<float>& user_tower() { return *user_; }
  Tower<float>& item_tower() { return *item_; }
  RetrievalLoss<float>& loss() { return *loss_; }
  const TwoTowerConfig& config() const { return config_; }

 private:
  explicit TwoTower(const TwoTowerConfig& config) : config_(config) {}

  TwoTowerConfig config_;
  ParamStore<float> params_;
  std::unique_ptr<Tower<float>> user_, item_;
  std::unique_ptr<RetrievalLoss<float>> loss_;
};

}  // namespace towerps::models

#endif  // TOWERPS_MODELS_TWO_TOWER_H_
