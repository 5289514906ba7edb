// One training step of the two-tower model against a ParamSource, the same code for
// embedded mode (LocalParams) and for a distributed worker (PsClient):
//
//   refresh dense parameters (every dense_sync_every steps) -> pull the batch's
//   unique rows -> pool -> towers, loss, backward -> push row gradients ->
//   accumulate dense gradients, push them every dense_sync_every steps.
//
// Also the forward-only embedding of users or items for export and evaluation
// (rows read with create=false: nothing is created or changed).
//
// Thread-compatible: one per training thread (each owns a TwoTower replica).
#ifndef TOWERPS_WORKER_STEP_RUNNER_H_
#define TOWERPS_WORKER_STEP_RUNNER_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "data/example.h"
#include "models/tensor.h"
#include "models/two_tower.h"
#include "ps/param_source.h"
#include "worker/item_catalog.h"
#include "worker/model_config.h"
#include "worker/negative_miner.h"
#include "worker/sparse_inputs.h"

namespace towerps::worker {

struct StepStats {
  double loss = 0;
  int64_t examples = 0;
  int64_t unique_keys = 0;
  double pull_us = 0;     // sparse (and dense, when refreshed) pulls
  double compute_us = 0;  // pooling, towers, loss, backward
  double push_us = 0;     // sparse (and dense, when due) pushes
};

// A batch with its rows pulled: what Prepare hands to Run. Owned by one thread at a
// time (a prefetch thread prepares the next batch while the trainer runs this one).
struct PreparedBatch {
  explicit PreparedBatch(const BoundModel* model);

  // The examples (borrowed: must stay unchanged until Run returns).
  const data::ExampleBatch* batch = nullptr;
  data::ExampleBatch::SideColumns items;  // positives + extra negatives
  std::vector<uint64_t> extra_ids;
  std::vector<float> log_q, extra_log_q;
  // With mining: the owner row of each extra (-1 for the shared uniform ones); else empty.
  std::vector<int32_t> extra_owner;
  MinedNegatives mined;
  SparseInputs inputs;
  int64_t unique_keys = 0;
  double pull_us = 0;
};

class StepRunner {
 public:
  // model, catalog and params are borrowed. catalog may be null: then no logQ
  // correction and no extra negatives. The extra negatives of a step depend only on
  // (seed, step), so a replayed step draws the same ones; give each training thread
  // or worker its own seed (NegativeSeed). params may be null for a runner used only
  // through the Embed and RefreshDense calls that name their source.
  static absl::StatusOr<std::unique_ptr<StepRunner>> Create(const BoundModel* model,
                                                            const ItemCatalog* catalog,
                                                            ps::ParamSource* params,
                                                            uint64_t seed);

  // Sets up the dense parameters: with `assign`, initialises them from the config's
  // seed and assigns them to the source (ignored there if already set); then pulls.
  absl::Status InitDense(bool assign);

  // Turns on mined hard negatives (the config's `mine` line): Prepare adds each row's
  // mined items as its own extra negatives. positives is borrowed (shared by threads).
  // Errors: FailedPrecondition without a catalog; NegativeMiner::Create's.
  absl::Status EnableMining(const UserPositives* positives);

  // The sampler seed of training thread or worker `index` of a job with `config_seed`.
  static uint64_t NegativeSeed(uint64_t config_seed, int index);

  // One step on `batch` (size >= 2) at global step `step`; rates are the configured
  // base rates times lr_scale. Errors: the ParamSource's, or InvalidArgument for a
  // batch that does not match the schema.
  absl::StatusOr<StepStats> Train(const data::ExampleBatch& batch, int64_t step, float lr_scale);

  // The two halves of Train, for pipelining. Prepare draws the extra negatives and
  // pulls the batch's rows from `source` (which may be another thread's client); it
  // changes nothing of the runner but its miner's state (serialised), so calls for different PreparedBatches and sources
  // may overlap each other and Run of another PreparedBatch. Run computes, pushes the row gradients and accumulates the dense
  // ones through this runner's own ParamSource. prepared->batch must be set. When
  // Run's push fails, the step's dense gradient is taken out of the accumulation
  // again (its row gradients may have reached some servers), so the batch can be
  // run again.
  absl::Status Prepare(PreparedBatch* prepared, ps::ParamSource* source, int64_t step);
  absl::StatusOr<StepStats> Run(PreparedBatch* prepared, int64_t step, float lr_scale);

  // Pushes dense gradients accumulated since the last dense push and waits until
  // every update is applied (end of training). May be retried after a failure.
  absl::Status FlushDense(int64_t step, float lr_scale);

  // Re-reads the dense parameters (before Embed, after training) from `source`
  // (null: this runner's own).
  absl::Status RefreshDense(ps::ParamSource* source = nullptr);

  // Forgets the dense gradients accumulated since the last dense push (the job
  // rolled back past them); the next step re-reads the dense parameters.
  void DropDenseGradients();

  // With `on`, each dense push brings back the parameters after it (one round trip
  // instead of a push and, at the next step, a pull). Off by default: a synchronous
  // job must re-read them after the clock lets its next step start, so that it sees
  // every worker's update of the step before.
  void set_refresh_with_push(bool on) { refresh_with_push_ = on; }

  // Embeddings of n entities of `side` (columns of the side's schema): out n x d. Rows
  // are read from `source` (null: this runner's own) with create=false.
  absl::Status Embed(data::Side side, const data::ExampleBatch::SideColumns& columns, int64_t n,
                     models::Mat<float>* out, ps::ParamSource* source = nullptr);

  models::TwoTower& model() { return *two_tower_; }
  // The source Run pushes to (and Train pulls from).
  ps::ParamSource* params() const { return params_; }
  int output_dim() const { return model_->two_tower.user.output_dim; }

 private:
  StepRunner(const BoundModel* model, const ItemCatalog* catalog, ps::ParamSource* params,
             uint64_t seed);
  // Puts the mean dense gradient since the last dense push into `update` (and the
  // model's parameters as the refresh target, with refresh_with_push).
  void AddDense(float lr_scale, ps::StepUpdate* update);
  // After a successful dense push: restart the accumulation.
  void DensePushed();
  // After a failed dense push: the mean AddDense made back into the sum.
  void UndoMean();

  const BoundModel* const model_;
  const ItemCatalog* const catalog_;
  ps::ParamSource* const params_;
  std::unique_ptr<models::TwoTower> two_tower_;
  const uint64_t seed_;  // of the extra-negative sampler
  std::unique_ptr<NegativeMiner> miner_;  // null unless EnableMining
  PreparedBatch own_;    // Train's and Embed's
  models::Mat<float> user_x0_, item_x0_;
  std::vector<float> dense_grad_sum_;
  int steps_since_dense_push_ = 0;
  bool dense_stale_ = true;
  bool refresh_with_push_ = false;
};

}  // namespace towerps::worker

#endif  // TOWERPS_WORKER_STEP_RUNNER_H_
