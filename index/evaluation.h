// `towerps evaluate`: full-ranking retrieval on the validation or test split from a
// checkpoint. The item tower embeds every item of the catalog; the user tower
// embeds each evaluation example's user (features as of that interaction); exact
// inner-product top-K over all items excludes the user's earlier positives (train,
// and valid when evaluating test); the popularity baseline is ranked the same way.
// Thread-compatible (one call at a time).
#ifndef TOWERPS_INDEX_EVALUATION_H_
#define TOWERPS_INDEX_EVALUATION_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "index/metrics.h"
#include "models/tensor.h"
#include "worker/model_config.h"

namespace towerps::index {

struct EvaluationOptions {
  // Prepared dataset directory.
  std::string dataset_dir;
  // A checkpoint directory (with MANIFEST) of a run of the same model config.
  std::string checkpoint_dir;
  // "valid" or "test".
  std::string split = "test";
  std::vector<int> ks = {10, 50, 100};
  // Threads for the exact top-K.
  int threads = 1;
  // Entities per tower forward pass.
  int batch = 2048;

  absl::Status Validate() const;
};

struct EvaluationResult {
  RetrievalMetrics model;
  RetrievalMetrics popularity;
  int64_t queries = 0;
  int64_t items = 0;
  double embed_seconds = 0;
  double rank_seconds = 0;
};

// Errors: NotFound / DataLoss from the dataset or checkpoint, InvalidArgument when
// the config does not match them.
absl::StatusOr<EvaluationResult> EvaluateExact(const EvaluationOptions& options,
                                               const worker::ModelConfig& config);

}  // namespace towerps::index

#endif  // TOWERPS_INDEX_EVALUATION_H_
