// Flags shared by the post-training subcommands (export, build-index, serve, query,
// evaluate): gflags names are global to the binary, so each is defined once, here.
// A subcommand that accepts them lists "cmd/index_flags.cc" in its flag files.
#ifndef TOWERPS_CMD_INDEX_FLAGS_H_
#define TOWERPS_CMD_INDEX_FLAGS_H_

#include <string>

#include "absl/status/statusor.h"
#include "gflags/gflags.h"

DECLARE_string(checkpoint);
DECLARE_string(embeddings);
DECLARE_string(index_dir);
DECLARE_int32(ef_search);

namespace towerps::cmd {

// --checkpoint as given when it is a verified checkpoint, else the newest complete
// checkpoint under it (a run's checkpoint root). Errors: NotFound / DataLoss.
absl::StatusOr<std::string> ResolveCheckpoint(const std::string& flag);

}  // namespace towerps::cmd

#endif  // TOWERPS_CMD_INDEX_FLAGS_H_
