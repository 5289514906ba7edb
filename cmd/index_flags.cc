#include "cmd/index_flags.h"

#include <filesystem>

#include "ps/checkpoint.h"

DEFINE_string(checkpoint, "",
              "checkpoint directory (with MANIFEST), or a run's checkpoint root: the newest "
              "complete checkpoint under it is used");
DEFINE_string(embeddings, "",
              "exported embeddings directory (users.emb, items.emb; towerps export writes it)");
DEFINE_string(index_dir, "",
              "sharded index directory (MANIFEST + shard files; build-index), or an index "
              "root (CURRENT + v-<n>/ + deltas/: serve applies deltas and new versions live)");
DEFINE_int32(ef_search, 128, "HNSW efSearch (beam width) for queries");

namespace towerps::cmd {

absl::StatusOr<std::string> ResolveCheckpoint(const std::string& flag) {
  absl::Status direct = ps::VerifyCheckpoint(flag).status();
  if (direct.ok()) return flag;
  if (absl::IsNotFound(direct)) return direct;  // "does not exist"
  auto latest = ps::LatestCheckpoint(flag);
  if (latest.ok()) return *latest;
  // A step directory's own error says more; a root's is "no complete checkpoint".
  const bool step_dir = std::filesystem::path(flag).lexically_normal().filename().string().rfind(
                            "step-", 0) == 0;
  return step_dir ? direct : latest.status();
}

}  // namespace towerps::cmd
