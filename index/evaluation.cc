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
  if (split != "valid" && split != "test" && split != "cold") {
    return absl::InvalidArgumentError(
        absl::StrCat("split must be valid, test or cold, got ", split));
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

  // Candidates: the whole catalog; for the cold split only the held-out items, ranked
  // among themselves (as a feed ranks a batch of new items). row_of: catalog row ->
  // candidate row, -1 when not a candidate.
  const bool cold = options.split == "cold";
  std::vector<int32_t> row_of(static_cast<size_t>(catalog.size()), cold ? -1 : 0);
  std::vector<int64_t> candidates;  // catalog rows in candidate order
  if (cold) {
    TOWERPS_RETURN_IF_ERROR(ForEachExample(options.dataset_dir, "cold", [&](const data::Example& e) {
      const int64_t row = catalog.RowOf(e.item_id);
      if (row >= 0) row_of[row] = 0;
    }));
    // In item-key order (keys are hashes): popularity ranks held-out items, whose
    // counts are all 0, by their order, and the order of first appearance (or the
    // catalog's, which follows the log's) would leak how popular they are.
    for (int64_t row = 0; row < catalog.size(); ++row) {
      if (row_of[row] >= 0) candidates.push_back(row);
    }
    std::sort(candidates.begin(), candidates.end(),
              [&](int64_t a, int64_t b) { return catalog.key(a) < catalog.key(b); });
    for (size_t i = 0; i < candidates.size(); ++i) {
      row_of[candidates[i]] = static_cast<int32_t>(i);
    }
  } else {
    for (int64_t row = 0; row < catalog.size(); ++row) {
      row_of[row] = static_cast<int32_t>(row);
      candidates.push_back(row);
    }
  }

  // Items.
  std::vector<float> all_items;
  TOWERPS_RETURN_IF_ERROR(embedder->EmbedCatalog(cold ? &all_items : &set.items));
  for (int64_t row : candidates) {
    set.item_keys.push_back(catalog.key(row));
    set.item_counts.push_back(catalog.train_counts()[row]);
    if (cold) {
      set.items.insert(set.items.end(), all_items.begin() + row * set.dim,
                       all_items.begin() + (row + 1) * set.dim);
    }
  }
  TOWERPS_RETURN_IF_ERROR(MeasureCheckpointHealth(*embedder, &set.checkpoint_health));
  set.normalized.item = embedder->model().two_tower.item.l2_normalize;
  set.normalized.user = embedder->model().two_tower.user.l2_normalize;

  // Positives to exclude, per user: the earlier ones (train, and valid for test); for
  // the cold split the user's other held-out items.
  absl::flat_hash_map<uint64_t, std::vector<int32_t>> seen;
  auto remember = [&](const data::Example& e) {
    const int64_t row = catalog.RowOf(e.item_id);
    if (row >= 0 && row_of[row] >= 0) seen[e.user_id].push_back(row_of[row]);
  };
  if (cold) {
    TOWERPS_RETURN_IF_ERROR(ForEachExample(options.dataset_dir, "cold", remember));
  } else {
    TOWERPS_RETURN_IF_ERROR(ForEachExample(options.dataset_dir, "train", remember));
  }
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
    const int64_t catalog_row = catalog.RowOf(e.item_id);
    if (catalog_row < 0) return;  // an item unknown to the catalog cannot be retrieved
    const int32_t row = row_of[catalog_row];
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
