// The model config: one text file that names every table, binds dataset features to
// tables and tower inputs, and sets the towers, the loss, the optimizers, the
// learning-rate schedule and the batch. Embedded training, the distributed workers,
// the parameter servers and export all build the same model from the same file.
// Format: docs/model_config.md; examples in examples/*.conf.
//
//   table item_id dim=64 init=uniform:0.05 optimizer=rowwise_adagrad lr=0.05
//   feature user history table=item_id pooling=mean
//   feature item item_id table=item_id
//   dense user on
//   tower user mlp=256,128 cross=4 out=128 activation=relu
//   loss kind=softmax temperature=0.05 logq=on extra_negatives=0
//   dense_optimizer kind=adam lr=0.001 wd=0 clip=0
//   schedule warmup=100 min_lr_ratio=0.05
//   train batch=256 epochs=2 seed=1 dense_sync_every=1
//   mine every=100 per_user=4 skip_top=10
//
// Plain values; thread-compatible.
#ifndef TOWERPS_WORKER_MODEL_CONFIG_H_
#define TOWERPS_WORKER_MODEL_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "data/schema.h"
#include "models/attention.h"
#include "models/embedding_bag.h"
#include "models/layers.h"
#include "models/loss.h"
#include "models/optimizer.h"
#include "models/two_tower.h"
#include "sparse_emb/table_config.h"

namespace towerps::worker {

struct TableSpec {
  sparse_emb::TableConfig config;
  // Base learning rate of the table's sparse optimizer (scaled by the schedule).
  // Without `lr=`: 0.05, or kDefaultAdamLearningRate for optimizer=adam (a row moves
  // at most ~lr per coordinate per update: at the dense rate 0.001 rows barely leave
  // their initial values; docs/models.md "Sparse Adam").
  static constexpr float kDefaultAdamLearningRate = 0.01f;
  float learning_rate = 0.05f;
};

struct FeatureSpec {
  data::Side side = data::Side::kUser;
  // A sparse feature of the dataset schema (e.g. "history", "genres").
  std::string feature;
  // The table it reads (index into ModelConfig::tables).
  int table = 0;
  models::Pooling pooling = models::Pooling::kMean;
  // pooling=attention (user side only): the last `sequence.max_len` values go
  // through a models::SequenceEncoder (its dim is the table's).
  bool attention = false;
  models::SequenceEncoderConfig sequence;
};

struct TowerShape {
  std::vector<int> mlp_hidden = {256, 128};
  int cross_layers = 4;
  int output_dim = 128;
  models::ActivationKind activation = models::ActivationKind::kRelu;
};

// Mined hard negatives (worker/negative_miner.h): every `every` steps the item
// catalog is re-embedded; each batch user gets the `per_user` items ranked just below
// its known positives and its `skip_top` highest other items as its own negatives.
struct MiningOptions {
  int every = 0;      // steps between catalog embeddings; 0 = off (>= 0)
  int per_user = 4;   // mined negatives per batch row (1..1024)
  int skip_top = 10;  // the false-negative guard: ranks skipped (0..1000000)

  bool enabled() const { return every > 0; }
  absl::Status Validate() const;
};

struct ModelConfig {
  std::vector<TableSpec> tables;
  std::vector<FeatureSpec> features;
  // Feed the side's dense area (normalised with the dataset's statistics).
  bool user_dense = true;
  bool item_dense = true;
  TowerShape user_tower;
  TowerShape item_tower;
  models::LossOptions loss;
  // Subtract log(item frequency / total) from in-batch logits.
  bool logq = true;
  // Extra uniformly drawn items per batch as negatives (mixed negative sampling).
  int extra_negatives = 0;
  // The `mine` directive (off unless given).
  MiningOptions mining;
  models::DenseOptimizerOptions dense_optimizer;
  float dense_learning_rate = 1e-3f;
  // Linear warmup steps, then cosine to min_lr_ratio * base over the rest of training.
  int64_t warmup_steps = 100;
  double min_lr_ratio = 0.05;
  int batch_size = 256;
  int epochs = 1;
  uint64_t seed = 1;
  // Workers refresh dense parameters every k steps and accumulate their gradients
  // in between (the network then carries mostly sparse rows).
  int dense_sync_every = 1;

  // Index of the table named `name`, or -1.
  int TableIndex(absl::string_view name) const;
  absl::Status Validate() const;
};

// Longest line a model config may have; a longer one is refused without being echoed.
inline constexpr size_t kMaxConfigLineBytes = 4096;

// Parses the config text. Errors: InvalidArgument "<name>:<line>: <reason>".
absl::StatusOr<ModelConfig> ParseModelConfig(absl::string_view text,
                                             absl::string_view name = "config");
// Reads and parses a file. Errors: NotFound, InvalidArgument.
absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& path);

// A config resolved against a dataset schema: the slot of every feature and the
// widths of every tower input block.
struct BoundFeature {
  FeatureSpec spec;
  int slot = 0;  // slot in the side's schema
  int dim = 0;   // the table's dim
};

struct BoundModel {
  ModelConfig config;
  data::DatasetSchema schema;
  std::vector<BoundFeature> user_features;  // in config order
  std::vector<BoundFeature> item_features;
  int user_dense_dim = 0;  // 0 when the side's dense input is off or empty
  int item_dense_dim = 0;
  models::TwoTowerConfig two_tower;

  const std::vector<BoundFeature>& features(data::Side side) const {
    return side == data::Side::kUser ? user_features : item_features;
  }
  int dense_dim(data::Side side) const {
    return side == data::Side::kUser ? user_dense_dim : item_dense_dim;
  }
};

// Errors: InvalidArgument naming a feature the schema lacks, a dense feature bound to
// a table, or a side without any input.
absl::StatusOr<BoundModel> BindModel(const ModelConfig& config, const data::DatasetSchema& schema);

}  // namespace towerps::worker

#endif  // TOWERPS_WORKER_MODEL_CONFIG_H_
