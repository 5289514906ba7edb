#include "worker/step_runner.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "models/random.h"

namespace towerps::worker {
namespace {

double MicrosSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
      .count();
}

// The smallest rate ever sent: parameter servers refuse a zero learning rate.
constexpr float kMinLrScale = 1e-6f;

}  // namespace

PreparedBatch::PreparedBatch(const BoundModel* model) : inputs(model) {
  items.Init(model->schema.item);
}

StepRunner::StepRunner(const BoundModel* model, const ItemCatalog* catalog,
                       ps::ParamSource* params, uint64_t seed)
    : model_(model), catalog_(catalog), params_(params), seed_(seed), own_(model) {}

uint64_t StepRunner::NegativeSeed(uint64_t config_seed, int index) {
  return config_seed * 1000003 + static_cast<uint64_t>(index);
}

absl::StatusOr<std::unique_ptr<StepRunner>> StepRunner::Create(const BoundModel* model,
                                                               const ItemCatalog* catalog,
                                                               ps::ParamSource* params,
                                                               uint64_t seed) {
  std::unique_ptr<StepRunner> runner(new StepRunner(model, catalog, params, seed));
  TOWERPS_ASSIGN_OR_RETURN(runner->two_tower_, models::TwoTower::Create(model->two_tower));
  runner->dense_grad_sum_.assign(runner->two_tower_->params().size(), 0.0f);
  return runner;
}

absl::Status StepRunner::InitDense(bool assign) {
  if (assign) {
    two_tower_->Init(model_->config.seed);
    auto values = two_tower_->params().values();
    TOWERPS_RETURN_IF_ERROR(params_->AssignDense(absl::MakeConstSpan(values.data(), values.size())));
  }
  return RefreshDense();
}

absl::Status StepRunner::EnableMining(const UserPositives* positives) {
  if (catalog_ == nullptr) {
    return absl::FailedPreconditionError("mined negatives need the item catalog");
  }
  TOWERPS_ASSIGN_OR_RETURN(miner_, NegativeMiner::Create(model_, catalog_, positives));
  return absl::OkStatus();
}

absl::Status StepRunner::RefreshDense(ps::ParamSource* source) {
  if (source == nullptr) source = params_;
  auto values = two_tower_->params().values();
  TOWERPS_ASSIGN_OR_RETURN(int64_t version,
                           source->PullDense(absl::MakeSpan(values.data(), values.size())));
  if (version < 0) {
    return absl::UnavailableError("dense parameters are not initialised yet");
  }
  dense_stale_ = false;
  return absl::OkStatus();
}

void StepRunner::AddDense(float lr_scale, ps::StepUpdate* update) {
  // The accumulated gradient is the mean over the steps since the last push: one
  // update of a k-times larger batch.
  const float inv = 1.0f / static_cast<float>(steps_since_dense_push_);
  for (float& g : dense_grad_sum_) g *= inv;
  update->dense_grads = dense_grad_sum_;
  update->dense_learning_rate = model_->config.dense_learning_rate * lr_scale;
  if (refresh_with_push_) {
    auto values = two_tower_->params().values();
    update->refreshed = absl::MakeSpan(values.data(), values.size());
  }
}

void StepRunner::UndoMean() {
  const float k = static_cast<float>(steps_since_dense_push_);
  for (float& g : dense_grad_sum_) g *= k;
  dense_stale_ = true;  // a refresh may have been half written
}

void StepRunner::DropDenseGradients() {
  std::fill(dense_grad_sum_.begin(), dense_grad_sum_.end(), 0.0f);
  steps_since_dense_push_ = 0;
  dense_stale_ = true;
}

void StepRunner::DensePushed() {
  std::fill(dense_grad_sum_.begin(), dense_grad_sum_.end(), 0.0f);
  steps_since_dense_push_ = 0;
  dense_stale_ = !refresh_with_push_;
}

absl::Status StepRunner::FlushDense(int64_t step, float lr_scale) {
  if (steps_since_dense_push_ > 0) {
    ps::StepUpdate update;
    AddDense(std::max(lr_scale, kMinLrScale), &update);
    if (absl::Status pushed = params_->Update(update, step); !pushed.ok()) {
      UndoMean();  // the flush may be retried
      return pushed;
    }
    DensePushed();
  }
  return params_->Flush();
}

absl::StatusOr<StepStats> StepRunner::Train(const data::ExampleBatch& batch, int64_t step,
                                            float lr_scale) {
  own_.batch = &batch;
  TOWERPS_RETURN_IF_ERROR(Prepare(&own_, params_, step));
  return Run(&own_, step, lr_scale);
}

absl::Status StepRunner::Prepare(PreparedBatch* p, ps::ParamSource* source, int64_t step) {
  const data::ExampleBatch& batch = *p->batch;
  const int64_t b = static_cast<int64_t>(batch.size());
  if (b < 2) return absl::InvalidArgumentError("a training batch needs at least 2 examples");
  auto t0 = std::chrono::steady_clock::now();
  // Items: the batch's positives, then extra uniformly drawn negatives.
  p->items = batch.item;
  const int num_extra = catalog_ != nullptr ? model_->config.extra_negatives : 0;
  p->extra_ids.clear();
  p->extra_log_q.clear();
  if (num_extra > 0 && catalog_->size() > 0) {
    // A stream of its own per (seed, step): hash the pair into the generator's start.
    models::SplitMix64 rng(
        models::SplitMix64(seed_ ^ (static_cast<uint64_t>(step) * 0xD1B54A32D192ED03ULL)).Next());
    for (int k = 0; k < num_extra; ++k) {
      const int64_t row = static_cast<int64_t>(rng.NextBelow(catalog_->size()));
      p->items.Append(catalog_->features(row));
      p->extra_ids.push_back(catalog_->key(row));
      p->extra_log_q.push_back(catalog_->UniformLogQ());
    }
  }
  p->extra_owner.clear();
  if (miner_ != nullptr) {
    // Each row's mined items, a negative of that row only (loss.h extra_owner).
    TOWERPS_RETURN_IF_ERROR(miner_->Mine(batch, step, source, &p->mined));
    p->extra_owner.assign(p->extra_ids.size(), -1);
    for (size_t k = 0; k < p->mined.rows.size(); ++k) {
      const int64_t row = p->mined.rows[k];
      p->items.Append(catalog_->features(row));
      p->extra_ids.push_back(catalog_->key(row));
      p->extra_log_q.push_back(catalog_->LogQ(catalog_->key(row)));
      p->extra_owner.push_back(p->mined.owner[k]);
    }
  }
  const int64_t n_items = b + static_cast<int64_t>(p->extra_ids.size());
  p->log_q.clear();
  if (catalog_ != nullptr && model_->config.logq) {
    for (uint64_t id : batch.item_ids) p->log_q.push_back(catalog_->LogQ(id));
  }
  p->inputs.Begin(&batch.user, b, &p->items, n_items);
  p->unique_keys = p->inputs.unique_keys();
  TOWERPS_RETURN_IF_ERROR(source->Pull(p->inputs.pull_slices(), step, /*create=*/true));
  p->pull_us = MicrosSince(t0);
  return absl::OkStatus();
}

absl::StatusOr<StepStats> StepRunner::Run(PreparedBatch* p, int64_t step, float lr_scale) {
  const data::ExampleBatch& batch = *p->batch;
  lr_scale = std::max(lr_scale, kMinLrScale);
  StepStats stats;
  stats.examples = static_cast<int64_t>(batch.size());
  stats.unique_keys = p->unique_keys;
  stats.pull_us = p->pull_us;
  auto t1 = std::chrono::steady_clock::now();
  if (dense_stale_) TOWERPS_RETURN_IF_ERROR(RefreshDense());
  TOWERPS_RETURN_IF_ERROR(p->inputs.BuildInput(data::Side::kUser, &user_x0_));
  TOWERPS_RETURN_IF_ERROR(p->inputs.BuildInput(data::Side::kItem, &item_x0_));
  models::PairInfo info;
  info.item_ids = batch.item_ids;
  info.extra_item_ids = p->extra_ids;
  if (!p->log_q.empty()) {
    info.item_log_q = p->log_q;
    if (!p->extra_log_q.empty()) info.extra_log_q = p->extra_log_q;
  }
  info.weights = batch.weights;
  info.extra_owner = p->extra_owner;
  TOWERPS_ASSIGN_OR_RETURN(stats.loss,
                           two_tower_->ForwardBackward(models::View(user_x0_),
                                                       models::View(item_x0_),
                                                       static_cast<int>(p->extra_ids.size()),
                                                       info, p->inputs.sequences()));
  p->inputs.Backward(data::Side::kUser, models::View(two_tower_->user_input_grad()));
  for (size_t k = 0; k < p->inputs.sequences().size(); ++k) {
    p->inputs.BackwardSequence(k, models::View(two_tower_->sequence_input_grad(k)));
  }
  p->inputs.Backward(data::Side::kItem, models::View(two_tower_->item_input_grad()));
  auto grads = two_tower_->params().grads();
  for (size_t i = 0; i < grads.size(); ++i) dense_grad_sum_[i] += grads[i];
  ++steps_since_dense_push_;
  stats.compute_us = MicrosSince(t1);

  auto t2 = std::chrono::steady_clock::now();
  // The rows' gradients and, when due, the dense gradient: one request per server.
  ps::StepUpdate update;
  update.sparse = p->inputs.PushSlices(lr_scale);
  const bool dense_due = steps_since_dense_push_ >= model_->config.dense_sync_every;
  if (dense_due) AddDense(lr_scale, &update);
  if (absl::Status pushed = params_->Update(update, step); !pushed.ok()) {
    // Take this step's dense gradient out again (AddDense made the sum a mean): the
    // batch may be run once more. A refresh may have been half written: re-read.
    if (dense_due) UndoMean();
    for (size_t i = 0; i < grads.size(); ++i) dense_grad_sum_[i] -= grads[i];
    --steps_since_dense_push_;
    dense_stale_ = true;
    return pushed;
  }
  if (dense_due) DensePushed();
  stats.push_us = MicrosSince(t2);
  return stats;
}

absl::Status StepRunner::Embed(data::Side side, const data::ExampleBatch::SideColumns& columns,
                               int64_t n, models::Mat<float>* out, ps::ParamSource* source) {
  if (source == nullptr) source = params_;
  if (n == 0) {
    out->resize(0, output_dim());
    return absl::OkStatus();
  }
  SparseInputs& inputs = own_.inputs;
  if (side == data::Side::kUser) {
    inputs.Begin(&columns, n, nullptr, 0);
  } else {
    inputs.Begin(nullptr, 0, &columns, n);
  }
  TOWERPS_RETURN_IF_ERROR(source->Pull(inputs.pull_slices(), 0, /*create=*/false));
  models::Mat<float>& x0 = side == data::Side::kUser ? user_x0_ : item_x0_;
  TOWERPS_RETURN_IF_ERROR(inputs.BuildInput(side, &x0));
  if (side == data::Side::kUser) {
    TOWERPS_ASSIGN_OR_RETURN(const models::Mat<float>* users,
                             two_tower_->EmbedUsers(models::View(x0), inputs.sequences()));
    *out = *users;
  } else {
    *out = two_tower_->EmbedItems(models::View(x0));
  }
  return absl::OkStatus();
}

}  // namespace towerps::worker
