// `towerps evaluate`: full-ranking exact retrieval metrics of a checkpoint on the
// validation or test split, beside the popularity baseline, and the embeddings'
// health; with --ann also through a sharded ANN index (--index_dir) on the same
// embeddings. With --run_dir the result line is appended to <run_dir>/evaluations.jsonl.
#include <cstdio>
#include <limits>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cmd/index_flags.h"
#include "cmd/job_flags.h"
#include "cmd/subcommand.h"
#include "common/clock.h"
#include "common/file_util.h"
#include "common/json.h"
#include "gflags/gflags.h"
#include "index/ann_evaluation.h"
#include "index/embedding_health.h"
#include "index/evaluation.h"
#include "index/sharded_index.h"
#include "worker/model_config.h"

DEFINE_string(split, "test",
              "valid, test, or cold (a dataset prepared with --cold_item_fraction: the held-out "
              "items ranked among themselves)");
DEFINE_string(ks, "10,50,100", "comma-separated cut-offs K");
DEFINE_bool(json, false, "print only the JSON object of the figures");
DEFINE_bool(ann, false,
            "also retrieve through the index in --index_dir: ann_* metrics, index recall "
            "(overlap with exact top-K), latency and QPS at each --ef_searches value");
DEFINE_string(ef_searches, "16,64,128,256", "efSearch values swept by --ann");

namespace towerps::cmd {
namespace {

// Parses a comma-separated list of positive ints; false on a bad entry.
bool ParseInts(const std::string& flag, std::vector<int>* out) {
  out->clear();
  for (absl::string_view k : absl::StrSplit(flag, ',', absl::SkipEmpty())) {
    int value;
    if (!absl::SimpleAtoi(k, &value) || value < 1) return false;
    out->push_back(value);
  }
  return !out->empty();
}

}  // namespace

int RunEvaluate(int /*argc*/, char** /*argv*/) {
  if (FLAGS_config.empty() || FLAGS_dataset.empty() || FLAGS_checkpoint.empty()) {
    std::fprintf(stderr,
                 "towerps evaluate: --config, --dataset and --checkpoint are required\n");
    return 2;
  }
  if (FLAGS_ann && FLAGS_index_dir.empty()) {
    std::fprintf(stderr, "towerps evaluate: --ann needs --index_dir\n");
    return 2;
  }
  auto config = worker::LoadModelConfig(FLAGS_config);
  if (!config.ok()) return Fail("evaluate", config.status());
  index::EvaluationOptions options;
  options.dataset_dir = FLAGS_dataset;
  auto checkpoint = ResolveCheckpoint(FLAGS_checkpoint);
  if (!checkpoint.ok()) return Fail("evaluate", checkpoint.status());
  options.checkpoint_dir = *checkpoint;
  options.split = FLAGS_split;
  if (!ParseInts(FLAGS_ks, &options.ks)) {
    std::fprintf(stderr, "towerps evaluate: bad --ks '%s'\n", FLAGS_ks.c_str());
    return 2;
  }
  index::AnnEvaluationOptions ann_options;
  ann_options.ks = options.ks;
  ann_options.ef_search = FLAGS_ef_search;
  if (FLAGS_ann && (!ParseInts(FLAGS_ef_searches, &ann_options.ef_searches) ||
                    FLAGS_ef_search < 1)) {
    std::fprintf(stderr, "towerps evaluate: bad --ef_searches or --ef_search\n");
    return 2;
  }
  options.threads = ThreadsOrAllCores();
  std::unique_ptr<index::ShardedIndex> ann_index;
  if (FLAGS_ann) {  // fail fast on a bad index, before embedding
    auto loaded = index::ShardedIndex::Load(FLAGS_index_dir);
    if (!loaded.ok()) return Fail("evaluate", loaded.status());
    ann_index = *std::move(loaded);
  }
  auto set = index::BuildEvaluationSet(options, *config);
  if (!set.ok()) return Fail("evaluate", set.status());
  auto result = index::EvaluateExactOn(*set, options);
  if (!result.ok()) return Fail("evaluate", result.status());
  JsonObject json;
  result->model.AddToJson(&json);
  result->popularity.AddToJson(&json, "popularity_");
  json.Add("split", FLAGS_split).Add("items", result->items);
  const index::EmbeddingHealth health = index::EmbeddingHealthOf(*set);
  std::optional<index::AnnEvaluationResult> ann;
  if (FLAGS_ann) {
    if (ann_index->manifest().model_step != set->model_step) {
      return Fail("evaluate", absl::FailedPreconditionError(absl::StrCat(
                                  "the index was built from model step ",
                                  ann_index->manifest().model_step, ", the checkpoint is step ",
                                  set->model_step, ": export and build-index again")));
    }
    auto evaluated = index::EvaluateAnn(*set, *result, *ann_index, ann_options);
    if (!evaluated.ok()) return Fail("evaluate", evaluated.status());
    ann = *std::move(evaluated);
    ann->AddToJson(&json);
    json.Add("index_shards", static_cast<int64_t>(ann_index->manifest().shards.size()));
  }
  json.AddRaw("embedding_health", health.ToJson());
  if (!FLAGS_json) {
    std::vector<index::LabeledMetrics> columns = {{"model", &result->model},
                                                  {"popularity", &result->popularity}};
    if (ann) columns = {{"ann", &ann->sweep[ann->primary].metrics}, {"exact", &result->model}};
    std::printf("%s split: %ld queries over %ld items (checkpoint %s)\n", FLAGS_split.c_str(),
                static_cast<long>(result->queries), static_cast<long>(result->items),
                options.checkpoint_dir.c_str());
    std::printf("%s", index::FormatMetricsTable(columns).c_str());
    if (ann) {
      std::printf("ANN through %s (efSearch %d above), one query at a time:\n%s",
                  FLAGS_index_dir.c_str(), ann->sweep[ann->primary].ef_search,
                  ann->ToTable().c_str());
    }
    std::printf("embedding %.2f s, ranking %.2f s\n", result->embed_seconds,
                result->rank_seconds);
    std::printf(
        "embedding health: item coverage %.3f, item_id row norm p50 %.3g, mean pairwise "
        "cosine of items %.3f%s\n",
        health.item_coverage,
        health.item_id_norms ? health.item_id_norms->quantiles[3]
                             : std::numeric_limits<double>::quiet_NaN(),
        health.item_mean_pairwise_cosine,
        health.collapse_warning ? " (COLLAPSED: the items point one way)" : "");
  }
  std::printf("%s\n", json.ToString().c_str());
  if (!FLAGS_run_dir.empty()) {
    // <run_dir>/evaluations.jsonl (docs/metrics.md): what was printed, with when,
    // which checkpoint and which model step.
    RealClock clock;
    JsonObject line;
    line.Add("ts_ms", clock.WallMillis())
        .Add("checkpoint", options.checkpoint_dir)
        .Add("step", set->model_step)
        .Merge(json);
    absl::Status appended =
        AppendToFile(FLAGS_run_dir + "/evaluations.jsonl", line.ToString() + "\n");
    if (!appended.ok()) return Fail("evaluate", appended);
  }
  return 0;
}

}  // namespace towerps::cmd
