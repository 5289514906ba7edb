// `towerps prepare`: interaction logs -> a prepared dataset directory (data/prepare.h).
#include <csignal>
#include <cstdio>
#include <string>

#include "cmd/shared_flags.h"
#include "cmd/subcommand.h"
#include "data/prepare.h"
#include "gflags/gflags.h"

DEFINE_string(input, "", "Directory with the source logs (MovieLens, MovieTweetings, or the "
                         "files a column spec names).");
DEFINE_string(format, "auto",
              "auto | ml-100k | ml-1m | ml-10m | ml-csv | movietweetings | spec.");
DEFINE_string(column_spec, "", "Column spec file for generic CSV/TSV (docs/column_spec.md); "
                               "implies --format=spec.");
DEFINE_bool(overwrite, false, "Replace an existing --output.");
DEFINE_bool(strict, false, "Stop at the first malformed line with a non-zero exit.");
DEFINE_double(min_rating, 0, "Positives: label >= min_rating (and > 0).");
DEFINE_int32(min_user_interactions, 0, "k-core: minimum positives per user (0 = off).");
DEFINE_int32(min_item_interactions, 0, "k-core: minimum positives per item (0 = off).");
DEFINE_string(split_mode, "leave_last_out", "leave_last_out (per user) or time (global cut-offs).");
DEFINE_int64(valid_cutoff, 0, "--split=time: first validation timestamp (0 = 80th percentile).");
DEFINE_int64(test_cutoff, 0, "--split=time: first test timestamp (0 = 90th percentile).");
DEFINE_double(cold_item_fraction, 0,
              "Hold this fraction of the items out entirely (split \"cold\": cold-start "
              "evaluation, `evaluate --split=cold`); 0 = none.");
DEFINE_int32(history_length, 50, "Positive items before each interaction kept as history.");
DEFINE_int32(num_shards, 4, "Example shards per split.");
DEFINE_uint64(shuffle_seed, 1, "Seed of the example order within each split.");

namespace towerps::cmd {
namespace {

std::atomic<bool> g_prepare_cancel{false};

void OnSignal(int) { g_prepare_cancel.store(true); }

}  // namespace

int RunPrepare(int /*argc*/, char** /*argv*/) {
  data::PrepareOptions options;
  options.source.input = FLAGS_input;
  options.source.format = FLAGS_format;
  options.source.column_spec = FLAGS_column_spec;
  options.output_dir = FLAGS_output;
  options.overwrite = FLAGS_overwrite;
  options.strict = FLAGS_strict;
  options.min_rating = FLAGS_min_rating;
  options.min_user_interactions = FLAGS_min_user_interactions;
  options.min_item_interactions = FLAGS_min_item_interactions;
  options.split_mode = FLAGS_split_mode;
  options.valid_cutoff = FLAGS_valid_cutoff;
  options.test_cutoff = FLAGS_test_cutoff;
  options.cold_item_fraction = FLAGS_cold_item_fraction;
  options.history_length = FLAGS_history_length;
  options.num_shards = FLAGS_num_shards;
  options.seed = FLAGS_shuffle_seed;
  if (absl::Status s = options.Validate(); !s.ok()) {
    std::fprintf(stderr, "towerps prepare: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  absl::StatusOr<data::PrepareResult> result = data::Prepare(options, nullptr, &g_prepare_cancel);
  if (!result.ok()) {
    std::fprintf(stderr, "towerps prepare: %s\n", std::string(result.status().message()).c_str());
    return 1;
  }
  std::printf("%s", result->ToString().c_str());
  return 0;
}

}  // namespace towerps::cmd
