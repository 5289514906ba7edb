// `towerps evaluate`: full-ranking retrieval on the validation, test or cold split from a
// checkpoint. The item tower embeds every item of the catalog; the user tower
// embeds each evaluation example's user (features as of that interaction); exact
// inner-product top-K over all items excludes the user's earlier positives (train,
// and valid when evaluating test); the popularity baseline is ranked the same way.
// Thread-compatible (one call at a time).
#ifndef TOWERPS_INDEX_EVALUATION_H_
#define TOWERPS_INDEX_EVALUATION_H_

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "index/embedding_health.h"
#include "index/metrics.h"
#include "models/tensor.h"
#include "worker/model_config.h"

namespace towerps::index {

struct EvaluationOptions {
  // Prepared dataset directory.
  std::string dataset_dir;
  // A checkpoint directory (with MANIFEST) of a run of the same model config.
  std::string checkpoint_dir;
  // "valid", "test", or "cold" (a dataset prepared with cold_item_fraction: the
  // held-out items' positives, ranked among the held-out items only).
  std::string split = "test";
  std::vector<int> ks = {10, 50, 100};
  // Threads for the exact top-K.
  int threads = 1;
  // Entities per tower forward pass.
  int batch = 2048;

  absl::Status Validate() const;
};

// What ranking needs, embedded once: every item (catalog order) and one query per
// evaluation example, with exclusions and relevant items as catalog rows (CSR).
struct EvaluationSet {
  int dim = 0;
  int64_t model_step = 0;              // the checkpoint's step
  std::vector<uint64_t> item_keys;     // m, catalog order
  std::vector<float> items;            // m * dim
  std::vector<double> item_counts;     // m training frequencies
  std::vector<float> queries;          // n * dim
  std::vector<int64_t> exclude_offsets = {0}, relevant_offsets = {0};  // n + 1 each
  std::vector<int32_t> exclude_ids, relevant_ids;
  double embed_seconds = 0;
  // The checkpoint's embedding health figures (MeasureCheckpointHealth:
  // item_coverage, item_id_norms, user_id_norms) and the towers' normalisation.
  EmbeddingHealth checkpoint_health;
  TowerNormalization normalized;

  int64_t num_items() const { return static_cast<int64_t>(item_keys.size()); }
  int64_t num_queries() const { return static_cast<int64_t>(relevant_offsets.size()) - 1; }
};

struct EvaluationResult {
  RetrievalMetrics model;
  RetrievalMetrics popularity;
  int64_t queries = 0;
  int64_t items = 0;
  double embed_seconds = 0;
  double rank_seconds = 0;
  // The model's exact ranking (k = the largest K, capped at the item count).
  TopK ranked;
};

// Embeds the items and the split's queries (index/embedder.h). Errors: NotFound /
// DataLoss from the dataset or checkpoint, InvalidArgument when the config does not
// match them, FailedPrecondition for an empty split.
absl::StatusOr<EvaluationSet> BuildEvaluationSet(const EvaluationOptions& options,
                                                 const worker::ModelConfig& config);

// Exact ranking and metrics of `set`, beside popularity (options: ks, threads).
absl::StatusOr<EvaluationResult> EvaluateExactOn(const EvaluationSet& set,
                                                 const EvaluationOptions& options);

// The embedding health of `set`: its tower outputs (ComputeEmbeddingHealth) with the
// checkpoint's figures.
EmbeddingHealth EmbeddingHealthOf(const EvaluationSet& set);

// BuildEvaluationSet + EvaluateExactOn.
absl::StatusOr<EvaluationResult> EvaluateExact(const EvaluationOptions& options,
                                               const worker::ModelConfig& config);

}  // namespace towerps::index

#endif  // TOWERPS_INDEX_EVALUATION_H_
