// Checkpoint directories: one directory per step, one file per shard (written by
// each parameter server, or by embedded mode acting as the only server), and a
// MANIFEST written last, atomically, listing every file with its size and the
// CRC-32C of the whole file. Every file starts with a FileBinding
// (common/file_binding.h) naming its job, step, server rank and table. A directory
// without a MANIFEST is a torn checkpoint; a file whose size, checksum or binding
// differs is a corrupted (or copied-in) one; both are refused before anything is loaded.
//
// MANIFEST format (text, one item per line):
//   towerps-checkpoint 3
//   job <job id, 16 hex digits>
//   step <global step>
//   base <step>                          (incremental checkpoints only: the previous
//                                        link of the chain, a sibling step-<base>)
//   servers <number of parameter servers>
//   virtual_shards <virtual shards of the shard map>
//   dense_params <floats in the dense array>
//   file <name> <bytes> <crc32c hex>      (one line per file; a plain name)
//   partition <id> <records consumed> <done 0|1>   (cluster jobs: one per data
//                                        partition, the progress a resumed job starts from)
//
// Format 2 (no base line) is still read: a full checkpoint. An incremental checkpoint's
// table files hold only the rows changed since its base (each server's dense block is
// whole in every checkpoint); restoring step S loads the chain's root (a full one) and
// every link up to S, all verified first (ReadChain, VerifyCheckpoint).
//
// Checkpoint directories are named step-<step, 10 digits> under a root each process
// takes from its own flags (<run_dir>/checkpoint); messages name a step, never a path.
//
// Thread-safe (pure functions over files).
#ifndef TOWERPS_PS_CHECKPOINT_H_
#define TOWERPS_PS_CHECKPOINT_H_

#include <cstdint>
#include <functional>
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
  // The job that wrote it (a resumed job keeps its checkpoint's id).
  uint64_t job_id = 0;
  int64_t step = 0;
  // The previous link of an incremental checkpoint's chain; -1 for a full checkpoint.
  int64_t base_step = -1;
  int num_servers = 1;
  uint32_t num_virtual_shards = 1;
  uint64_t dense_params = 0;
  std::vector<CheckpointFile> files;
  std::vector<PartitionProgress> partitions;  // empty for embedded-mode checkpoints
};

// "step-<step, 10 digits>" and "<root>/step-<step, 10 digits>".
std::string CheckpointName(int64_t step);
std::string CheckpointDir(const std::string& root, int64_t step);

// A fresh job's id: 64 random bits, never 0.
uint64_t NewJobId();

// Size and CRC-32C of one file. Errors: file errors.
absl::StatusOr<CheckpointFile> DescribeFile(const std::string& dir, const std::string& name);

// Writes <dir>/MANIFEST atomically (last, after every file is durable). InvalidArgument
// for a file name that is not a plain name.
absl::Status WriteManifest(const std::string& dir, const CheckpointManifest& manifest);

// Reads and parses <dir>/MANIFEST without reading the files it lists. Errors:
// NotFound "does not exist" when `dir` is missing; DataLoss "torn checkpoint" when the
// MANIFEST is missing; DataLoss for a malformed MANIFEST, one of an older format, or
// one whose step differs from the directory's name.
absl::StatusOr<CheckpointManifest> ReadManifest(const std::string& dir);

// Verifies the listed files of `manifest` whose names `wanted` accepts (all when
// null): each must be a regular file (not a symlink) bound to the manifest's job and
// step, with the listed size and checksum. Errors: DataLoss naming the file and what
// differs.
absl::Status VerifyFiles(const std::string& dir, const CheckpointManifest& manifest,
                         const std::function<bool(const std::string&)>& wanted = nullptr);

// One checkpoint of a chain: its directory and MANIFEST.
struct ChainLink {
  std::string dir;
  CheckpointManifest manifest;
};

// The chain of the checkpoint in `dir`, root (a full checkpoint) first and `dir` last,
// following each MANIFEST's base to the sibling directory step-<base> (never a
// symlink). Every link must be of the same job, servers, virtual shards and dense
// size, with a base older than itself. Reads MANIFESTs only. Errors: ReadManifest's
// for `dir`; DataLoss naming the link that is missing, torn, malformed or foreign.
absl::StatusOr<std::vector<ChainLink>> ReadChain(const std::string& dir);

// ReadChain + VerifyFiles of every file of every link; `dir`'s manifest.
absl::StatusOr<CheckpointManifest> VerifyCheckpoint(const std::string& dir);

// The newest checkpoint under `root` (by step) whose whole chain verifies, skipping
// torn or corrupt ones (or ones with a missing or corrupt link) with a warning naming
// the link. NotFound when there is none (or `root` does not exist).
absl::StatusOr<std::string> LatestCheckpoint(const std::string& root);

// Retention: deletes old checkpoints under `root`, keeping the newest
// `keep_full_chains` complete chains (a full checkpoint that verifies and every
// increment built on it). Deleted: every step-N directory (torn, corrupt or complete)
// older than the oldest kept full checkpoint, and nothing newer. Never deleted: the
// links of the newest complete checkpoint (LatestCheckpoint's chain, whatever
// keep_full_chains says), anything but a directory named CheckpointName(N) directly
// under `root` (symlinks and other names are left alone and logged), and anything at
// all when no complete checkpoint exists (or `keep_full_chains` <= 0). Reads every file
// of the kept chains' full checkpoints and of the newest chain (VerifyCheckpoint).
// Returns the number of directories deleted. Errors: file errors (listing `root`,
// deleting; directories deleted before one fails stay deleted). Not safe against a
// concurrent writer of an older step than the newest complete one.
absl::StatusOr<int> PruneCheckpoints(const std::string& root, int keep_full_chains);

// The step of `dir` when it is a checkpoint directory directly under `root`
// (step-N, compared after resolving symlinks and relative paths). InvalidArgument
// otherwise: a job resumes only from a checkpoint of its own run directory, since
// servers find it under their own root by its step.
absl::StatusOr<int64_t> CheckpointStepUnder(const std::string& root, const std::string& dir);

}  // namespace towerps::ps

#endif  // TOWERPS_PS_CHECKPOINT_H_
