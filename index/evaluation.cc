#include "index/evaluation.h"

#include <chrono>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "data/example_reader.h"
#include "index/exact_topk.h"
#include "ps/checkpoint_params.h"
#include "worker/embedded_trainer.h"
#include "worker/item_catalog.h"
#include "worker/step_runner.h"

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

// Appends the n x d rows of `m` to `out`.
void AppendRows(const models::Mat<float>& m, std::vector<float>* out) {
  out->insert(out->end(), m.data(), m.data() + m.size());
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

absl::StatusOr<EvaluationResult> EvaluateExact(const EvaluationOptions& options,
                                               const worker::ModelConfig& config) {
  TOWERPS_RETURN_IF_ERROR(options.Validate());
  TOWERPS_ASSIGN_OR_RETURN(data::DatasetMeta meta, data::LoadDatasetMeta(options.dataset_dir));
  TOWERPS_ASSIGN_OR_RETURN(worker::BoundModel model, worker::BindModel(config, meta.schema));
  TOWERPS_ASSIGN_OR_RETURN(auto catalog, worker::ItemCatalog::Load(options.dataset_dir));
  TOWERPS_ASSIGN_OR_RETURN(auto probe, models::TwoTower::Create(model.two_tower));
  TOWERPS_ASSIGN_OR_RETURN(
      auto params, ps::CheckpointParams::Open(
                       options.checkpoint_dir,
                       worker::ServerOptionsFor(model, 0, 1, probe->params().size())));
  TOWERPS_ASSIGN_OR_RETURN(auto runner,
                           worker::StepRunner::Create(&model, nullptr, params.get(), 0));
  TOWERPS_RETURN_IF_ERROR(runner->RefreshDense());
  EvaluationResult result;
  const int d = runner->output_dim();
  auto embed_start = Clock::now();

  // Items.
  std::vector<float> items;
  data::ExampleBatch::SideColumns columns;
  columns.Init(meta.schema.item);
  models::Mat<float> embedded;
  for (int64_t begin = 0; begin < catalog->size(); begin += options.batch) {
    const int64_t end = std::min<int64_t>(catalog->size(), begin + options.batch);
    columns.Clear();
    for (int64_t row = begin; row < end; ++row) columns.Append(catalog->features(row));
    TOWERPS_RETURN_IF_ERROR(runner->Embed(data::Side::kItem, columns, end - begin, &embedded));
    AppendRows(embedded, &items);
  }
  result.items = catalog->size();

  // Earlier positives to exclude, per user.
  absl::flat_hash_map<uint64_t, std::vector<int32_t>> seen;
  auto remember = [&](const data::Example& e) {
    int64_t row = catalog->RowOf(e.item_id);
    if (row >= 0) seen[e.user_id].push_back(static_cast<int32_t>(row));
  };
  TOWERPS_RETURN_IF_ERROR(ForEachExample(options.dataset_dir, "train", remember));
  if (options.split == "test") {
    TOWERPS_RETURN_IF_ERROR(ForEachExample(options.dataset_dir, "valid", remember));
  }

  // Queries: one per evaluation example.
  std::vector<float> queries;
  std::vector<int64_t> exclude_offsets = {0}, relevant_offsets = {0};
  std::vector<int32_t> exclude_ids, relevant_ids;
  columns.Init(meta.schema.user);
  int64_t pending = 0;
  absl::Status status;
  auto flush = [&]() -> absl::Status {
    if (pending == 0) return absl::OkStatus();
    TOWERPS_RETURN_IF_ERROR(runner->Embed(data::Side::kUser, columns, pending, &embedded));
    AppendRows(embedded, &queries);
    columns.Clear();
    pending = 0;
    return absl::OkStatus();
  };
  TOWERPS_RETURN_IF_ERROR(ForEachExample(options.dataset_dir, options.split,
                                         [&](const data::Example& e) {
    if (!status.ok()) return;
    const int64_t row = catalog->RowOf(e.item_id);
    if (row < 0) return;  // an item unknown to the catalog cannot be retrieved
    columns.Append(e.user);
    ++pending;
    auto it = seen.find(e.user_id);
    if (it != seen.end()) {
      for (int32_t id : it->second) {
        if (id != row) exclude_ids.push_back(id);  // never hide the held-out item
      }
    }
    exclude_offsets.push_back(static_cast<int64_t>(exclude_ids.size()));
    relevant_ids.push_back(static_cast<int32_t>(row));
    relevant_offsets.push_back(static_cast<int64_t>(relevant_ids.size()));
    if (pending == options.batch) status = flush();
  }));
  TOWERPS_RETURN_IF_ERROR(status);
  TOWERPS_RETURN_IF_ERROR(flush());
  result.queries = static_cast<int64_t>(relevant_ids.size());
  result.embed_seconds = SecondsSince(embed_start);
  if (result.queries == 0) {
    return absl::FailedPreconditionError(absl::StrCat("the ", options.split, " split is empty"));
  }

  auto rank_start = Clock::now();
  const int k = std::min<int64_t>(*std::max_element(options.ks.begin(), options.ks.end()),
                                  result.items);
  std::vector<int> ks;
  for (int kk : options.ks) ks.push_back(std::min(kk, k));
  TopKOptions topk;
  topk.threads = options.threads;
  TOWERPS_ASSIGN_OR_RETURN(TopK ranked,
                           ExactTopK(queries.data(), result.queries, items.data(), result.items,
                                     d, k, exclude_offsets, exclude_ids, topk));
  TOWERPS_ASSIGN_OR_RETURN(result.model, ComputeMetrics(ranked, relevant_offsets, relevant_ids,
                                                        result.items, ks));
  TOWERPS_ASSIGN_OR_RETURN(TopK popular,
                           PopularityTopK(catalog->train_counts(), result.queries, k,
                                          exclude_offsets, exclude_ids, topk));
  TOWERPS_ASSIGN_OR_RETURN(result.popularity,
                           ComputeMetrics(popular, relevant_offsets, relevant_ids, result.items, ks));
  result.rank_seconds = SecondsSince(rank_start);
  return result;
}

}  // namespace towerps::index
