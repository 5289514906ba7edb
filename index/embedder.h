// The two embedding dataflows: the user tower over users and the item tower over
// items of a prepared dataset, with parameters from a checkpoint or from any
// ParamSource (a running cluster's PsClient). The one piece of code that embeds
// entities, shared by `towerps export` and `towerps evaluate`.
//
// Entities are embedded `batch` at a time (memory: one batch of features and
// batch * dim floats), rows read with create=false. Thread-compatible: one thread
// per TowerEmbedder (a PsClient source is single-threaded too).
#ifndef TOWERPS_INDEX_EMBEDDER_H_
#define TOWERPS_INDEX_EMBEDDER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "data/example.h"
#include "data/schema.h"
#include "models/tensor.h"
#include "ps/checkpoint_params.h"
#include "ps/param_source.h"
#include "worker/item_catalog.h"
#include "worker/model_config.h"
#include "worker/step_runner.h"

namespace towerps::index {

struct EmbedderOptions {
  // Prepared dataset directory (meta.txt, users.tpr, items.tpr).
  std::string dataset_dir;
  // A verified checkpoint directory (with MANIFEST); ignored when a ParamSource is
  // given to Create.
  std::string checkpoint_dir;
  // Entities per tower forward pass; >= 1.
  int batch = 2048;
  // A live source whose servers answer Unavailable (one still restoring its shards
  // after the cluster formed) is asked again every 50 ms for up to this long,
  // milliseconds; >= 0.
  int64_t ready_timeout_ms = 30000;

  absl::Status Validate() const;
};

class TowerEmbedder {
 public:
  // Binds the model to the dataset and opens the parameters: `params` (borrowed,
  // must outlive the embedder) or, when null, options.checkpoint_dir. model_step is
  // the checkpoint's step, or for a live source the dense updates applied so far.
  // Errors: NotFound / DataLoss from the dataset or checkpoint, InvalidArgument when
  // the config does not match them, the source's errors.
  static absl::StatusOr<std::unique_ptr<TowerEmbedder>> Create(const EmbedderOptions& options,
                                                               const worker::ModelConfig& config,
                                                               ps::ParamSource* params = nullptr);
  ~TowerEmbedder();

  // Embeds n entities of `side` given as columns: out n x dim (L2-normalised).
  absl::Status Embed(data::Side side, const data::ExampleBatch::SideColumns& columns, int64_t n,
                     models::Mat<float>* out);

  // Called per chunk: keys: n, raw_ids: n, embeddings: n x dim.
  using ChunkSink = absl::FunctionRef<absl::Status(absl::Span<const uint64_t>,
                                                   absl::Span<const std::string>,
                                                   const models::Mat<float>&)>;
  // Streams every entity of users.tpr / items.tpr in file order through the tower,
  // `batch` at a time. Errors: DataLoss from the file, the source's, the sink's.
  absl::Status EmbedAll(data::Side side, ChunkSink sink);

  // Every item, in catalog row order: out catalog().size() * dim.
  absl::Status EmbedCatalog(std::vector<float>* out);

  // Entities in the side's entity file.
  absl::StatusOr<int64_t> CountEntities(data::Side side) const;

  int dim() const;
  int64_t model_step() const { return model_step_; }
  const data::DatasetMeta& meta() const { return meta_; }
  const worker::ItemCatalog& catalog() const { return *catalog_; }
  const worker::BoundModel& model() const { return model_; }
  // The checkpoint Create opened, or null when it was given a ParamSource.
  const ps::CheckpointParams* checkpoint() const { return owned_params_.get(); }

 private:
  explicit TowerEmbedder(const EmbedderOptions& options) : options_(options) {}

  const EmbedderOptions options_;
  data::DatasetMeta meta_;
  worker::BoundModel model_;
  std::unique_ptr<worker::ItemCatalog> catalog_;
  std::unique_ptr<ps::CheckpointParams> owned_params_;  // the checkpoint, when opened here
  std::unique_ptr<worker::StepRunner> runner_;
  int64_t model_step_ = 0;
};

}  // namespace towerps::index

#endif  // TOWERPS_INDEX_EMBEDDER_H_
