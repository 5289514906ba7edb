// Checkpoint directories: one directory per step, one file per shard (written by
// each parameter server, or by embedded mode acting as the only server), and a
// MANIFEST written last, atomically, listing every file with its size and CRC-32C.
// A directory without a MANIFEST is a torn checkpoint; a file whose size or checksum
// differs is a corrupted one; both are refused before anything is loaded.
//
// MANIFEST format (text, one item per line):
//   towerps-checkpoint 1
//   step <global step>
//   servers <number of parameter servers>
//   virtual_shards <virtual shards of the shard map>
//   dense_params <floats in the dense array>
//   file <name> <bytes> <crc32c hex>      (one line per file)
//   partition <id> <records consumed> <done 0|1>   (cluster jobs: one per data
//                                        partition, the progress a resumed job starts from)
//
// Thread-safe (pure functions over files).
#ifndef TOWERPS_PS_CHECKPOINT_H_
#define TOWERPS_PS_CHECKPOINT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace towerps::ps {

struct CheckpointFile {
  std::string name;  // relative to the checkpoint directory
  uint64_t bytes = 0;
  uint32_t crc32c = 0;
};

// How far the job's readers got in one data partition when the checkpoint began
// (progress reported up to then; a resumed job re-reads what came after).
struct PartitionProgress {
  int id = 0;
  int64_t offset = 0;  // records consumed
  bool done = false;
};

struct CheckpointManifest {
  int64_t step = 0;
  int num_servers = 1;
  uint32_t num_virtual_shards = 1;
  uint64_t dense_params = 0;
  std::vector<CheckpointFile> files;
  std::vector<PartitionProgress> partitions;  // empty for embedded-mode checkpoints
};

// "<root>/step-<step, 10 digits>".
std::string CheckpointDir(const std::string& root, int64_t step);

// Size and CRC-32C of one file. Errors: file errors.
absl::StatusOr<CheckpointFile> DescribeFile(const std::string& dir, const std::string& name);

// Writes <dir>/MANIFEST atomically (last, after every file is durable).
absl::Status WriteManifest(const std::string& dir, const CheckpointManifest& manifest);

// Reads <dir>/MANIFEST and verifies every file it lists (size and checksum).
// Errors: DataLoss "torn checkpoint" when the MANIFEST is missing, DataLoss naming
// the file whose size or checksum differs or that is missing, DataLoss for a
// malformed MANIFEST.
absl::StatusOr<CheckpointManifest> VerifyCheckpoint(const std::string& dir);

// The newest verified checkpoint under `root` (by step), skipping torn or corrupt
// ones with a warning. NotFound when there is none.
absl::StatusOr<std::string> LatestCheckpoint(const std::string& root);

}  // namespace towerps::ps

#endif  // TOWERPS_PS_CHECKPOINT_H_
