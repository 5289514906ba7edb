// A verified checkpoint loaded in-process and read through the ParamSource
// interface: one ParameterServer per saved server shard, keys routed by the shard
// map the checkpoint was written with. Export and evaluation read a cluster's
// checkpoint (N servers) and an embedded run's (one server) the same way.
// Thread-safe for reads (the servers' tables and dense blocks are).
#ifndef TOWERPS_PS_CHECKPOINT_PARAMS_H_
#define TOWERPS_PS_CHECKPOINT_PARAMS_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ps/checkpoint.h"
#include "ps/param_source.h"
#include "ps/server.h"
#include "ps/shard_map.h"

namespace towerps::ps {

class CheckpointParams final : public ParamSource {
 public:
  // Verifies <dir>'s MANIFEST, then loads every server's shards (of every link of an
  // incremental checkpoint's chain: ParameterServer::LoadCheckpoint). `server_template`
  // gives the tables and dense optimizer (rank, num_servers and dense_params are
  // taken from the manifest). Errors: DataLoss for a torn or corrupt checkpoint,
  // InvalidArgument when the model does not match it.
  static absl::StatusOr<std::unique_ptr<CheckpointParams>> Open(
      const std::string& dir, const ParameterServerOptions& server_template);

  absl::Status Pull(absl::Span<const SparseSlice> slices, int64_t step, bool create) override;
  // Read-only: pushes and dense updates are refused with FailedPrecondition.
  absl::Status Update(const StepUpdate& update, int64_t step) override;
  absl::StatusOr<int64_t> PullDense(absl::Span<float> params) override;
  absl::Status AssignDense(absl::Span<const float> values) override;

  // How many of `keys` have a row in table `table` (duplicates counted each time;
  // evaluation's item coverage). InvalidArgument for a table out of range.
  absl::StatusOr<int64_t> CountExistingRows(uint32_t table, absl::Span<const uint64_t> keys) const;

  // Streams every row of table `table`, server by server, in chunks of at most
  // `chunk_rows` (> 0): fn(keys: m, values: m * dim fp32), as
  // sparse_emb::EmbeddingTable::ForEachRow (memory: one chunk; each row once; the
  // checkpoint is read-only, so the walk is exact). Stops at and returns fn's first
  // error; InvalidArgument for a table out of range or chunk_rows <= 0.
  absl::Status ForEachRow(uint32_t table, int64_t chunk_rows,
                          const std::function<absl::Status(absl::Span<const uint64_t> keys,
                                                           const float* values)>& fn) const;
  // The dim of table `table`; InvalidArgument when out of range.
  absl::StatusOr<int> TableDim(uint32_t table) const;

  const CheckpointManifest& manifest() const { return manifest_; }

 private:
  CheckpointParams(CheckpointManifest manifest, ShardMap map)
      : manifest_(std::move(manifest)), map_(std::move(map)) {}

  const CheckpointManifest manifest_;
  const ShardMap map_;
  std::vector<std::unique_ptr<ParameterServer>> servers_;
};

}  // namespace towerps::ps

#endif  // TOWERPS_PS_CHECKPOINT_PARAMS_H_
