// The sparse half of a step: turns a batch's feature columns into tower inputs and
// the towers' input gradients back into per-table row gradients.
//
// For one batch: every table's unique keys across all features of both sides (the
// history and item_id features share the item table, so an item seen in both pulls
// one row), one CSR per feature over those rows, mean/sum pooling (EmbeddingBag),
// the normalised dense area, and the concatenated x0 of each tower; backward
// scatters d(x0) through the pooling into one gradient per unique row, summed over
// the features that share a table. A pooling=attention feature is not pooled here:
// its last max_len values become a padded sequence for the model's encoder.
//
// Thread-compatible: one per training thread; buffers are reused across batches.
#ifndef TOWERPS_WORKER_SPARSE_INPUTS_H_
#define TOWERPS_WORKER_SPARSE_INPUTS_H_

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "data/example.h"
#include "models/embedding_bag.h"
#include "models/two_tower.h"
#include "models/tensor.h"
#include "ps/param_source.h"
#include "worker/model_config.h"

namespace towerps::worker {

class SparseInputs {
 public:
  // `model` is borrowed and must outlive this object.
  explicit SparseInputs(const BoundModel* model);

  // Starts a batch: user (n_user rows) and item (n_item rows) columns, either may
  // be null (embedding one side only). Collects the unique keys of every table.
  // The columns are borrowed until the next Begin.
  void Begin(const data::ExampleBatch::SideColumns* user, int64_t n_user,
             const data::ExampleBatch::SideColumns* item, int64_t n_item);

  // One slice per table with unique keys and an output buffer, to hand to
  // ParamSource::Pull. Valid until the next Begin.
  absl::Span<const ps::SparseSlice> pull_slices() const { return pull_slices_; }

  // After the pull: pools every feature of `side` and writes x0 (n x D, the side's
  // input blocks in config order, dense area last). InvalidArgument for a batch
  // that does not match the schema.
  absl::Status BuildInput(data::Side side, models::Mat<float>* x0);

  // After BuildInput(kUser): one padded sequence per pooling=attention feature, in
  // config order (models::SequenceBatch layout: position 0 = the most recent of the
  // feature's last max_len values). Their x0 blocks are left zero. Valid until the
  // next BuildInput.
  std::span<const models::SequenceBatch> sequences() const { return sequences_; }

  // After the towers' backward: d_x0 (n x D of `side`) is scattered into the row
  // gradients (attention features excepted). Call for each side that was built,
  // then push push_slices().
  void Backward(data::Side side, models::ConstMatRef<float> d_x0);
  // The gradient of sequence k's padded rows ((n * max_len) x dim) into the row
  // gradients.
  void BackwardSequence(size_t k, models::ConstMatRef<float> d_rows);

  // One slice per table: unique keys, summed row gradients and learning rate
  // base_lr(table) * lr_scale. Zeroes nothing; valid until the next Begin.
  absl::Span<const ps::SparseSlice> PushSlices(float lr_scale);

  int64_t unique_keys() const;

 private:
  struct TableBatch {
    absl::flat_hash_map<uint64_t, int32_t> index;  // key -> row
    std::vector<uint64_t> keys;
    std::vector<float> rows;   // keys.size() * dim
    std::vector<float> grads;  // keys.size() * dim
  };
  struct FeatureBatch {
    std::vector<int64_t> offsets;
    std::vector<int32_t> indices;
    std::unique_ptr<models::EmbeddingBag<float>> bag;
    // pooling=attention: position p of example b is row seq_index[b * L + p] of
    // the table batch (-1: padding); seq_rows holds those rows, B * L * dim.
    std::vector<int32_t> seq_index, seq_lengths;
    std::vector<float> seq_rows;
  };
  const data::ExampleBatch::SideColumns* columns(data::Side side) const {
    return side == data::Side::kUser ? user_ : item_;
  }
  int64_t rows(data::Side side) const { return side == data::Side::kUser ? n_user_ : n_item_; }
  std::vector<FeatureBatch>& feature_batches(data::Side side) {
    return side == data::Side::kUser ? user_batches_ : item_batches_;
  }
  void Collect(data::Side side);
  void CollectSequence(const data::ExampleBatch::SparseColumn& col, int64_t n, int max_len,
                       TableBatch* table, FeatureBatch* fb);

  const BoundModel* const model_;
  // Dense normalisation per side: mean and 1 / max(stddev, 1e-6), dense_dim each.
  std::vector<float> user_mean_, user_inv_std_, item_mean_, item_inv_std_;

  const data::ExampleBatch::SideColumns* user_ = nullptr;
  const data::ExampleBatch::SideColumns* item_ = nullptr;
  int64_t n_user_ = 0;
  int64_t n_item_ = 0;
  std::vector<TableBatch> tables_;
  std::vector<FeatureBatch> user_batches_, item_batches_;
  std::vector<ps::SparseSlice> pull_slices_, push_slices_;
  models::Mat<float> d_pooled_;
  std::vector<models::SequenceBatch> sequences_;
  std::vector<size_t> sequence_features_;  // user feature index of sequence k
};

}  // namespace towerps::worker

#endif  // TOWERPS_WORKER_SPARSE_INPUTS_H_
