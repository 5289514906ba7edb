#include "cmd/index_flags.h"

#include "ps/checkpoint.h"

DEFINE_string(checkpoint, "",
              "checkpoint directory (with MANIFEST), or a run's checkpoint root: the newest "
              "complete checkpoint under it is used");
DEFINE_string(embeddings, "",
              "exported embeddings directory (users.emb, items.emb; towerps export writes it)");
DEFINE_string(index_dir, "", "sharded index directory (MANIFEST + shard files; build-index)");
DEFINE_int32(ef_search, 128, "HNSW efSearch (beam width) for queries");

namespace towerps::cmd {

absl::StatusOr<std::string> ResolveCheckpoint(const std::string& flag) {
  absl::Status direct = ps::VerifyCheckpoint(flag).status();
  if (direct.ok()) return flag;
  auto latest = ps::LatestCheckpoint(flag);
  if (latest.ok()) return *latest;
  return direct;
}

}  // namespace towerps::cmd
