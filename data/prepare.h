// `towerps prepare`: raw interaction logs -> a prepared dataset directory.
//
// Output (format: docs/data.md), written into "<output_dir>.tmp-<pid>" and renamed
// into place only when complete, so a failed or interrupted run leaves nothing at
// output_dir:
//   meta.txt                        schema, vocabulary sizes, dense stats, counts, shards
//   {train,valid,test}-NNNNN-of-MMMMM.tpr   example shards (record files)
//   cold-NNNNN-of-MMMMM.tpr         with cold_item_fraction > 0: the held-out items' positives
//   users.tpr, items.tpr            every kept user's / item's features (users: history
//                                   of the last H training positives)
//   item_freq.tsv                   key, raw id, training count per item (for logQ)
//
// Pipeline: read -> positives (label >= min_rating and label > 0) -> k-core ->
// split (per-user leave-last-out, or global time cut-offs) -> examples: per
// positive the user's features as of its timestamp, including the last H positive
// items with a strictly earlier timestamp (never the example's own item), the item's
// features, label and weight 1. Examples within a split are shuffled (seed).
// Single-threaded. Memory: ~40 bytes per interaction plus the entities.
#ifndef TOWERPS_DATA_PREPARE_H_
#define TOWERPS_DATA_PREPARE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "data/issue_log.h"
#include "data/sources.h"

namespace towerps::data {

struct PrepareOptions {
  // Where the logs are and in which format.
  SourceOptions source;
  // The dataset directory to create. Must not exist (or be empty) unless overwrite.
  std::string output_dir;
  // Replace an existing output_dir (atomically: the old one is removed after the rename).
  bool overwrite = false;
  // Stop at the first malformed line with an error (default: skip, count, report).
  bool strict = false;
  // An interaction is a positive when label >= min_rating and label > 0. Default 0.
  double min_rating = 0;
  // k-core over positives: drop users / items with fewer positives, repeatedly,
  // until both hold. 0 or 1 = off.
  int min_user_interactions = 0;
  int min_item_interactions = 0;
  // "leave_last_out": per user, the last positive -> test, the one before -> valid,
  // the rest -> train (a user with 2 positives: train + test; with 1: train).
  // "time": timestamp < valid_cutoff -> train, < test_cutoff -> valid, else test.
  std::string split_mode = "leave_last_out";
  // Unix seconds for split "time"; 0 = the 80th / 90th percentile of positive timestamps.
  int64_t valid_cutoff = 0;
  int64_t test_cutoff = 0;
  // Cold-start evaluation: this fraction of the items (chosen by a hash of the item's
  // key and `seed`) is held out entirely: every positive of theirs goes to the "cold"
  // split, never to train, valid, test or any user's history, so a model meets them
  // only through their features (e.g. content vectors). The other positives are split
  // as above. In [0, 0.5]; 0 = no cold split.
  double cold_item_fraction = 0;
  // H: positive items before the interaction kept in the "history" slot. Default 50.
  int history_length = 50;
  // Shards per split (a split with fewer examples gets fewer shards, at least 1).
  int num_shards = 4;
  // Seeds the shuffle of examples within each split.
  uint64_t seed = 1;

  // InvalidArgument naming the bad field.
  absl::Status Validate() const;
};

struct PrepareResult {
  std::string format;
  int64_t interaction_lines = 0;  // data lines of the interaction log
  int64_t side_lines = 0;         // data lines of side files
  int64_t skipped_lines = 0;      // malformed lines skipped
  std::map<std::string, int64_t> skipped_by_reason;
  std::vector<LineIssue> first_issues;  // up to 20, for the report
  int64_t interactions = 0;       // well-formed interactions
  int64_t not_positive = 0;       // below min_rating
  int64_t removed_by_kcore = 0;   // positives removed by the k-core filter
  uint64_t users = 0;
  uint64_t items = 0;
  uint64_t examples[4] = {0, 0, 0, 0};  // train, valid, test, cold
  std::string output_dir;

  // A human-readable multi-line summary (what `towerps prepare` prints).
  std::string ToString() const;
};

// Stages in order: "read", "filter", "split", "write_shards", "write_entities",
// "write_meta", "commit". A hook that returns an error at a stage makes the run fail
// there (a fault-injection seam for tests).
using PrepareHook = std::function<absl::Status(absl::string_view stage)>;

// Runs the pipeline. `cancel` (may be null) is polled; when it becomes true the run
// stops with Cancelled. On any error the temporary directory is removed.
// Errors: InvalidArgument (options, bad spec, a malformed line in strict mode),
// NotFound (missing input), FailedPrecondition (output exists), Cancelled, I/O.
absl::StatusOr<PrepareResult> Prepare(const PrepareOptions& options,
                                      const PrepareHook& hook = nullptr,
                                      const std::atomic<bool>* cancel = nullptr);

}  // namespace towerps::data

#endif  // TOWERPS_DATA_PREPARE_H_
