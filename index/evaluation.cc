#include "index/evaluation.h"

#include <algorithm>
#include <chrono>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "data/example_reader.h"
#include "index/embedder.h"
#include "index/embedding_health.h"
#include "index/exact_topk.h"

namespace towerps::index {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Reads a split: for each example calls fn(example).
template <typename Fn>
absl::Status ForEachExample(const std::string& dataset_dir, const std::string& split, Fn&& fn) {
  data::ExampleReaderOptions options;
  options.dataset_dir = dataset_dir;
  options.split = split;
  TOWERPS_ASSIGN_OR_RETURN(auto reader, data::ExampleReader::Open(options));
  data::Example example;
  while (true) {
    TOWERPS_ASSIGN_OR_RETURN(bool more, reader->Next(&example));
    if (!more) return absl::OkStatus();
    fn(example);
  }
}

}  // namespace

absl::Status EvaluationOptions::Validate() const {
  if (dataset_dir.empty()) return absl::InvalidArgumentError("dataset_dir is empty");
  if (checkpoint_dir.empty()) return absl::InvalidArgumentError("checkpoint_dir is empty");
  if (split != "valid" && split != "test") {
    return absl::InvalidArgumentError(absl::StrCat("split must be valid or test, got ", split));
  }
  if (ks.empty()) return absl::InvalidArgumentError("no K to evaluate");
  if (threads < 1 || batch < 1) return absl::InvalidArgumentError("threads and batch must be >= 1");
  return absl::OkStatus();
}

absl::StatusOr<EvaluationSet> BuildEvaluationSet(const EvaluationOptions& options,
                                                 const worker::ModelConfig& config) {
  TOWERPS_RETURN_IF_ERROR(options.Validate());
  EmbedderOptions embed_options;
  embed_options.dataset_dir = options.dataset_dir;
  embed_options.checkpoint_dir = options.checkpoint_dir;
  embed_options.batch = options.batch;
  TOWERPS_ASSIGN_OR_RETURN(auto embedder, TowerEmbedder::Create(embed_options, config));
  const worker::ItemCatalog& catalog = embedder->catalog();
  EvaluationSet set;
  set.dim = embedder->dim();
  set.model_step = embedder->model_step();
  auto embed_start = Clock::now();

  // Items.
  TOWERPS_RETURN_IF_ERROR(embedder->EmbedCatalog(&set.items));
  for (int64_t row = 0; row < catalog.size(); ++row) set.item_keys.push_back(catalog.key(row));
  set.item_counts = catalog.train_counts();
  TOWERPS_RETURN_IF_ERROR(MeasureCheckpointHealth(*embedder, &set.checkpoint_health));
  set.normalized.item = embedder->model().two_tower.item.l2_normalize;
  set.normalized.user = embedder->model().two_tower.user.l2_normalize;

  // Earlier positives to exclude, per user.
  absl::flat_hash_map<uint64_t, std::vector<int32_t>> seen;
  auto remember = [&](const data::Example& e) {
    int64_t row = catalog.RowOf(e.item_id);
    if (row >= 0) seen[e.user_id].push_back(static_cast<int32_t>(row));
  };
  TOWERPS_RETURN_IF_ERROR(ForEachExample(options.dataset_dir, "train", remember));
  if (options.split == "test") {
    TOWERPS_RETURN_IF_ERROR(ForEachExample(options.dataset_dir, "valid", remember));
  }

  // Queries: one per evaluation example (the user's features as of that example).
  data::ExampleBatch::SideColumns columns;
  columns.Init(embedder->meta().schema.user);
  models::Mat<float> embedded;
  int64_t pending = 0;
  absl::Status status;
  auto flush = [&]() -> absl::Status {
    if (pending == 0) return absl::OkStatus();
    TOWERPS_RETURN_IF_ERROR(embedder->Embed(data::Side::kUser, columns, pending, &embedded));
    set.queries.insert(set.queries.end(), embedded.data(), embedded.data() + embedded.size());
    columns.Clear();
    pending = 0;
    return absl::OkStatus();
  };
  TOWERPS_RETURN_IF_ERROR(ForEachExample(options.dataset_dir, options.split,
                                         [&](const data::Example& e) {
    if (!status.ok()) return;
    const int64_t row = catalog.RowOf(e.item_id);
    if (row < 0) return;  // an item unknown to the catalog cannot be retrieved
    columns.Append(e.user);
    ++pending;
    auto it = seen.find(e.user_id);
    if (it != seen.end()) {
      for (int32_t id : it->second) {
        if (id != row) set.exclude_ids.push_back(id);  // never hide the held-out item
      }
    }
    set.exclude_offsets.push_back(static_cast<int64_t>(set.exclude_ids.size()));
    set.relevant_ids.push_back(static_cast<int32_t>(row));
    set.relevant_offsets.push_back(static_cast<int64_t>(set.relevant_ids.size()));
    if (pending == options.batch) status = flush();
  }));
  TOWERPS_RETURN_IF_ERROR(status);
  TOWERPS_RETURN_IF_ERROR(flush());
  set.embed_seconds = SecondsSince(embed_start);
  if (set.num_queries() == 0) {
    return absl::FailedPreconditionError(absl::StrCat("the ", options.split, " split is empty"));
  }
  return set;
}

absl::StatusOr<EvaluationResult> EvaluateExactOn(const EvaluationSet& set,
                                                 const EvaluationOptions& options) {
  if (options.ks.empty()) return absl::InvalidArgumentError("no K to evaluate");
  EvaluationResult result;
  result.items = set.num_items();
  result.queries = set.num_queries();
  result.embed_seconds = set.embed_seconds;
  auto rank_start = Clock::now();
  const int k = std::min<int64_t>(*std::max_element(options.ks.begin(), options.ks.end()),
                                  result.items);
  std::vector<int> ks;
  for (int kk : options.ks) ks.push_back(std::min(kk, k));
  TopKOptions topk;
  topk.threads = options.threads;
  TOWERPS_ASSIGN_OR_RETURN(result.ranked,
                           ExactTopK(set.queries.data(), result.queries, set.items.data(),
                                     result.items, set.dim, k, set.exclude_offsets,
                                     set.exclude_ids, topk));
  TOWERPS_ASSIGN_OR_RETURN(result.model, ComputeMetrics(result.ranked, set.relevant_offsets,
                                                        set.relevant_ids, result.items, ks));
  TOWERPS_ASSIGN_OR_RETURN(TopK popular,
                           PopularityTopK(set.item_counts, result.queries, k,
                                          set.exclude_offsets, set.exclude_ids, topk));
  TOWERPS_ASSIGN_OR_RETURN(result.popularity, ComputeMetrics(popular, set.relevant_offsets,
                                                             set.relevant_ids, result.items, ks));
  result.rank_seconds = SecondsSince(rank_start);
  return result;
}

EmbeddingHealth EmbeddingHealthOf(const EvaluationSet& set) {
  EmbeddingHealth health =
      ComputeEmbeddingHealth(set.items.data(), set.num_items(), set.queries.data(),
                             set.num_queries(), set.dim, set.normalized);
  health.item_coverage = set.checkpoint_health.item_coverage;
  health.item_id_norms = set.checkpoint_health.item_id_norms;
  health.user_id_norms = set.checkpoint_health.user_id_norms;
  return health;
}

absl::StatusOr<EvaluationResult> EvaluateExact(const EvaluationOptions& options,
                                               const worker::ModelConfig& config) {
  TOWERPS_ASSIGN_OR_RETURN(EvaluationSet set, BuildEvaluationSet(options, config));
  return EvaluateExactOn(set, options);
}

}  // namespace towerps::index
