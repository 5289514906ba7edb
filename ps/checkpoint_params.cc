#include "ps/checkpoint_params.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace towerps::ps {

absl::StatusOr<std::unique_ptr<CheckpointParams>> CheckpointParams::Open(
    const std::string& dir, const ParameterServerOptions& server_template) {
  // Each server's LoadCheckpoint verifies its own files (and the MANIFEST names them all).
  TOWERPS_ASSIGN_OR_RETURN(CheckpointManifest manifest, ReadManifest(dir));
  TOWERPS_ASSIGN_OR_RETURN(ShardMap map,
                           ShardMap::Balanced(manifest.num_virtual_shards, manifest.num_servers));
  if (server_template.dense_params != manifest.dense_params) {
    return absl::InvalidArgumentError(absl::StrCat(
        dir, " holds ", manifest.dense_params, " dense parameters; the model has ",
        server_template.dense_params, " (another model config?)"));
  }
  std::unique_ptr<CheckpointParams> params(new CheckpointParams(manifest, std::move(map)));
  for (int rank = 0; rank < manifest.num_servers; ++rank) {
    ParameterServerOptions options = server_template;
    options.rank = rank;
    options.num_servers = manifest.num_servers;
    options.job_id = manifest.job_id;
    options.name = absl::StrCat("checkpoint/", rank);
    TOWERPS_ASSIGN_OR_RETURN(auto server, ParameterServer::Create(options, nullptr));
    TOWERPS_RETURN_IF_ERROR(server->LoadCheckpoint(dir));
    params->servers_.push_back(std::move(server));
  }
  return params;
}

absl::Status CheckpointParams::Pull(absl::Span<const SparseSlice> slices, int64_t /*step*/,
                                    bool /*create*/) {
  std::vector<std::vector<uint32_t>> positions;
  std::vector<uint64_t> keys;
  std::vector<float> rows;
  for (const SparseSlice& s : slices) {
    if (s.table >= servers_[0]->options().tables.size()) {
      return absl::InvalidArgumentError(absl::StrCat("no table ", s.table));
    }
    map_.GroupByServer(s.keys, &positions);
    for (size_t server = 0; server < servers_.size(); ++server) {
      const auto& pos = positions[server];
      keys.resize(pos.size());
      rows.resize(pos.size() * s.dim);
      for (size_t j = 0; j < pos.size(); ++j) keys[j] = s.keys[pos[j]];
      servers_[server]->table(static_cast<int>(s.table))->Lookup(keys, rows.data());
      for (size_t j = 0; j < pos.size(); ++j) {
        std::memcpy(s.out + static_cast<size_t>(pos[j]) * s.dim, rows.data() + j * s.dim,
                    s.dim * sizeof(float));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> CheckpointParams::CountExistingRows(uint32_t table,
                                                            absl::Span<const uint64_t> keys) const {
  TOWERPS_RETURN_IF_ERROR(TableDim(table).status());
  int64_t existing = 0;
  for (uint64_t key : keys) {
    ParameterServer& server = *servers_[map_.ServerOf(key)];
    existing += server.table(static_cast<int>(table))->GetRowInfo(key).has_value() ? 1 : 0;
  }
  return existing;
}

absl::Status CheckpointParams::ForEachRow(
    uint32_t table, int64_t chunk_rows,
    const std::function<absl::Status(absl::Span<const uint64_t> keys, const float* values)>& fn)
    const {
  TOWERPS_RETURN_IF_ERROR(TableDim(table).status());
  for (const auto& server : servers_) {
    TOWERPS_RETURN_IF_ERROR(server->table(static_cast<int>(table))->ForEachRow(chunk_rows, fn));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> CheckpointParams::TableDim(uint32_t table) const {
  if (table >= servers_[0]->options().tables.size()) {
    return absl::InvalidArgumentError(absl::StrCat("no table ", table));
  }
  return servers_[0]->table(static_cast<int>(table))->dim();
}

absl::Status CheckpointParams::Update(const StepUpdate&, int64_t) {
  return absl::FailedPreconditionError("a checkpoint is read-only");
}

absl::StatusOr<int64_t> CheckpointParams::PullDense(absl::Span<float> params) {
  if (params.size() != manifest_.dense_params) {
    return absl::InvalidArgumentError("dense pull size differs from the checkpoint's");
  }
  int64_t version = INT64_MAX;
  for (const auto& server : servers_) {
    version = std::min(version, server->dense()->Read(params.data() + server->dense()->offset()));
  }
  return version;
}

absl::Status CheckpointParams::AssignDense(absl::Span<const float>) {
  return absl::FailedPreconditionError("a checkpoint is read-only");
}

}  // namespace towerps::ps
