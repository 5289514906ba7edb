// Mined hard negatives (`mine every=N per_user=M skip_top=R`, docs/models.md "Hard
// negatives"): every N steps the whole item catalog is embedded through the current
// towers (exact: one inner product per (user, item)); at every step each batch user is
// embedded and scored against it, the user's known positives (its training positives
// and the row's own positive) are removed, then the R highest remaining ranks (the
// false-negative guard: an unseen item the model ranks first is as likely a future
// positive as a negative), and the next M items become that row's own extra negative
// columns (models/loss.h extra_owner) with their catalog log q.
//
// Where it runs: inside StepRunner::Prepare, so in every `towerps train` thread and in
// every `towerps worker`, reading rows through the ParamSource Prepare is given
// (create=false: mining never creates rows). Parameter servers are unchanged.
//
// Catalogs above kMaxExactMiningItems are refused: the hook for them is an index/
// engine (HNSW) built on the same refresh, queried for R + M + |positives| neighbours.
#ifndef TOWERPS_WORKER_NEGATIVE_MINER_H_
#define TOWERPS_WORKER_NEGATIVE_MINER_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "data/example.h"
#include "models/tensor.h"
#include "ps/param_source.h"
#include "worker/item_catalog.h"
#include "worker/model_config.h"

namespace towerps::worker {

class StepRunner;

// Each user's training positives as sorted catalog rows, read once from the training
// split. Immutable after Load; thread-safe (shared by every training thread).
class UserPositives {
 public:
  // Reads <dataset_dir>'s train split. Errors: the reader's (NotFound, DataLoss).
  static absl::StatusOr<std::unique_ptr<UserPositives>> Load(const std::string& dataset_dir,
                                                             const ItemCatalog& catalog);
  // For tests and callers with their own data: adds (user, catalog row).
  void Add(uint64_t user_id, int64_t row);
  // Sorts and deduplicates after Add.
  void Finish();
  // The user's rows, sorted; empty for a user without training positives.
  std::span<const int64_t> Of(uint64_t user_id) const;
  int64_t users() const { return static_cast<int64_t>(rows_.size()); }

 private:
  absl::flat_hash_map<uint64_t, std::vector<int64_t>> rows_;
};

// What one Mine call found: rows.size() == owner.size(), at most per_user per batch row
// (fewer when the catalog has too few items left after the guard).
struct MinedNegatives {
  std::vector<int64_t> rows;   // catalog rows
  std::vector<int32_t> owner;  // the batch row each one is a negative of
};

// The guard and the choice for one user, exposed for tests. scores: m catalog scores;
// excluded: sorted catalog rows never chosen. Appends to `out` the catalog rows at
// ranks [skip_top, skip_top + per_user) of the non-excluded items, best first (ties:
// lower row first). scratch is reused between calls.
void SelectMined(std::span<const float> scores, std::span<const int64_t> excluded, int skip_top,
                 int per_user, std::vector<int64_t>* scratch, std::vector<int64_t>* out);

// The largest catalog mined exactly (see the file comment).
inline constexpr int64_t kMaxExactMiningItems = int64_t{1} << 21;

// Owned by one StepRunner; Mine is thread-safe (calls are serialised: the trainer and
// its prefetch thread may both prepare batches).
class NegativeMiner {
 public:
  // model, catalog and positives are borrowed and must outlive the miner.
  // InvalidArgument when mining is off in the config; FailedPrecondition for a catalog
  // above kMaxExactMiningItems.
  static absl::StatusOr<std::unique_ptr<NegativeMiner>> Create(const BoundModel* model,
                                                               const ItemCatalog* catalog,
                                                               const UserPositives* positives);
  ~NegativeMiner();

  // Mines for `batch` at global step `step`: re-embeds the catalog first when `every`
  // steps have passed since the last embedding (or none was made), reading the dense
  // parameters and rows through `source`. Errors: the source's.
  absl::Status Mine(const data::ExampleBatch& batch, int64_t step, ps::ParamSource* source,
                    MinedNegatives* out);

  // Catalog embeddings made so far (for tests and logs).
  int64_t refreshes() const;

 private:
  NegativeMiner(const BoundModel* model, const ItemCatalog* catalog,
                const UserPositives* positives);
  absl::Status EmbedCatalog(ps::ParamSource* source) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  const BoundModel* const model_;
  const ItemCatalog* const catalog_;
  const UserPositives* const positives_;
  const MiningOptions options_;

  mutable absl::Mutex mu_;
  std::unique_ptr<StepRunner> embedder_ ABSL_GUARDED_BY(mu_);  // its own tower replica
  models::Mat<float> items_ ABSL_GUARDED_BY(mu_);              // catalog rows x d
  models::Mat<float> users_ ABSL_GUARDED_BY(mu_);              // B x d
  models::Mat<float> scores_ ABSL_GUARDED_BY(mu_);             // B x catalog rows
  std::vector<int64_t> excluded_ ABSL_GUARDED_BY(mu_), scratch_ ABSL_GUARDED_BY(mu_);
  int64_t last_refresh_step_ ABSL_GUARDED_BY(mu_) = -1;
  int64_t refreshes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace towerps::worker

#endif  // TOWERPS_WORKER_NEGATIVE_MINER_H_
