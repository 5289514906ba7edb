// `towerps evaluate`: full-ranking exact retrieval metrics of a checkpoint on the
// validation or test split, beside the popularity baseline.
#include <cstdio>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "cmd/job_flags.h"
#include "cmd/subcommand.h"
#include "common/json.h"
#include "gflags/gflags.h"
#include "index/evaluation.h"
#include "ps/checkpoint.h"
#include "worker/model_config.h"

DEFINE_string(checkpoint, "",
              "checkpoint directory (with MANIFEST), or a run's checkpoint root: the newest "
              "complete checkpoint under it is used");
DEFINE_string(split, "test", "valid or test");
DEFINE_string(ks, "10,50,100", "comma-separated cut-offs K");
DEFINE_bool(json, false, "print only the JSON object of the figures");

namespace towerps::cmd {

int RunEvaluate(int /*argc*/, char** /*argv*/) {
  auto fail = [](const absl::Status& status) {
    std::fprintf(stderr, "towerps evaluate: %s\n", std::string(status.message()).c_str());
    return 1;
  };
  if (FLAGS_config.empty() || FLAGS_dataset.empty() || FLAGS_checkpoint.empty()) {
    std::fprintf(stderr,
                 "towerps evaluate: --config, --dataset and --checkpoint are required\n");
    return 2;
  }
  auto config = worker::LoadModelConfig(FLAGS_config);
  if (!config.ok()) return fail(config.status());
  index::EvaluationOptions options;
  options.dataset_dir = FLAGS_dataset;
  options.checkpoint_dir = FLAGS_checkpoint;
  if (!ps::VerifyCheckpoint(FLAGS_checkpoint).ok()) {
    auto latest = ps::LatestCheckpoint(FLAGS_checkpoint);
    if (latest.ok()) options.checkpoint_dir = *latest;
  }
  options.split = FLAGS_split;
  options.ks.clear();
  for (absl::string_view k : absl::StrSplit(FLAGS_ks, ',', absl::SkipEmpty())) {
    int value;
    if (!absl::SimpleAtoi(k, &value) || value < 1) {
      std::fprintf(stderr, "towerps evaluate: bad --ks entry '%s'\n", std::string(k).c_str());
      return 2;
    }
    options.ks.push_back(value);
  }
  options.threads = ThreadsOrAllCores();
  auto result = index::EvaluateExact(options, *config);
  if (!result.ok()) return fail(result.status());
  JsonObject json;
  result->model.AddToJson(&json);
  result->popularity.AddToJson(&json, "popularity_");
  json.Add("split", FLAGS_split).Add("items", result->items);
  if (!FLAGS_json) {
    std::vector<index::LabeledMetrics> columns = {{"model", &result->model},
                                                  {"popularity", &result->popularity}};
    std::printf("%s split: %ld queries over %ld items (checkpoint %s)\n", FLAGS_split.c_str(),
                static_cast<long>(result->queries), static_cast<long>(result->items),
                options.checkpoint_dir.c_str());
    std::printf("%s", index::FormatMetricsTable(columns).c_str());
    std::printf("embedding %.2f s, ranking %.2f s\n", result->embed_seconds,
                result->rank_seconds);
  }
  std::printf("%s\n", json.ToString().c_str());
  return 0;
}

}  // namespace towerps::cmd
