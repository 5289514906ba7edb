#include "worker/negative_miner.h"

#include <algorithm>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "data/example_reader.h"
#include "glog/logging.h"
#include "worker/step_runner.h"

namespace towerps::worker {
namespace {

// Items per item-tower pass when embedding the catalog.
constexpr int64_t kEmbedChunk = 2048;

// SelectMined keeps a sorted buffer up to this many ranks, else selects over all rows.
constexpr size_t kBoundedSelection = 256;

}  // namespace

absl::StatusOr<std::unique_ptr<UserPositives>> UserPositives::Load(const std::string& dataset_dir,
                                                                   const ItemCatalog& catalog) {
  data::ExampleReaderOptions options;
  options.dataset_dir = dataset_dir;
  options.split = "train";
  TOWERPS_ASSIGN_OR_RETURN(auto reader, data::ExampleReader::Open(options));
  auto positives = std::make_unique<UserPositives>();
  data::Example example;
  while (true) {
    TOWERPS_ASSIGN_OR_RETURN(bool more, reader->Next(&example));
    if (!more) break;
    const int64_t row = catalog.RowOf(example.item_id);
    if (row >= 0) positives->Add(example.user_id, row);
  }
  positives->Finish();
  return positives;
}

void UserPositives::Add(uint64_t user_id, int64_t row) { rows_[user_id].push_back(row); }

void UserPositives::Finish() {
  for (auto& [user, rows] : rows_) {
    std::sort(rows.begin(), rows.end());
    rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  }
}

std::span<const int64_t> UserPositives::Of(uint64_t user_id) const {
  auto it = rows_.find(user_id);
  if (it == rows_.end()) return {};
  return it->second;
}

void SelectMined(std::span<const float> scores, std::span<const int64_t> excluded, int skip_top,
                 int per_user, std::vector<int64_t>* scratch, std::vector<int64_t>* out) {
  auto better = [&](int64_t a, int64_t b) {
    return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
  };
  const size_t want = static_cast<size_t>(skip_top) + static_cast<size_t>(per_user);
  const int64_t m = static_cast<int64_t>(scores.size());
  scratch->clear();
  size_t e = 0;  // one merge-like pass over the sorted exclusions
  if (want <= kBoundedSelection) {
    // The best `want` so far, in rank order: most rows lose one comparison to the last.
    for (int64_t row = 0; row < m; ++row) {
      while (e < excluded.size() && excluded[e] < row) ++e;
      if (e < excluded.size() && excluded[e] == row) continue;
      if (scratch->size() == want && !better(row, scratch->back())) continue;
      scratch->insert(std::upper_bound(scratch->begin(), scratch->end(), row, better), row);
      if (scratch->size() > want) scratch->pop_back();
    }
  } else {
    for (int64_t row = 0; row < m; ++row) {
      while (e < excluded.size() && excluded[e] < row) ++e;
      if (e < excluded.size() && excluded[e] == row) continue;
      scratch->push_back(row);
    }
    const size_t end = std::min(scratch->size(), want);
    if (end == 0) return;
    std::nth_element(scratch->begin(), scratch->begin() + (end - 1), scratch->end(), better);
    scratch->resize(end);
    std::sort(scratch->begin(), scratch->end(), better);
  }
  // The first `skip` ranks are the guard's; the rest are chosen.
  const size_t skip = std::min(scratch->size(), static_cast<size_t>(skip_top));
  out->insert(out->end(), scratch->begin() + skip, scratch->end());
}

NegativeMiner::NegativeMiner(const BoundModel* model, const ItemCatalog* catalog,
                             const UserPositives* positives)
    : model_(model), catalog_(catalog), positives_(positives), options_(model->config.mining) {}

NegativeMiner::~NegativeMiner() = default;

absl::StatusOr<std::unique_ptr<NegativeMiner>> NegativeMiner::Create(
    const BoundModel* model, const ItemCatalog* catalog, const UserPositives* positives) {
  if (!model->config.mining.enabled()) {
    return absl::InvalidArgumentError("mining is off in the model config (no mine line)");
  }
  if (catalog->size() > kMaxExactMiningItems) {
    return absl::FailedPreconditionError(absl::StrCat(
        "mine: the catalog has ", catalog->size(), " items; exact mining stops at ",
        kMaxExactMiningItems, " (an index/ engine would serve larger catalogs; not built)"));
  }
  std::unique_ptr<NegativeMiner> miner(new NegativeMiner(model, catalog, positives));
  absl::MutexLock lock(&miner->mu_);
  TOWERPS_ASSIGN_OR_RETURN(miner->embedder_,
                           StepRunner::Create(model, /*catalog=*/nullptr, /*params=*/nullptr, 0));
  return miner;
}

int64_t NegativeMiner::refreshes() const {
  absl::MutexLock lock(&mu_);
  return refreshes_;
}

absl::Status NegativeMiner::EmbedCatalog(ps::ParamSource* source) {
  TOWERPS_RETURN_IF_ERROR(embedder_->RefreshDense(source));
  const int64_t m = catalog_->size();
  items_.resize(m, embedder_->output_dim());
  data::ExampleBatch::SideColumns columns;
  columns.Init(model_->schema.item);
  models::Mat<float> chunk;
  for (int64_t begin = 0; begin < m; begin += kEmbedChunk) {
    const int64_t n = std::min(kEmbedChunk, m - begin);
    columns.Clear();
    for (int64_t row = begin; row < begin + n; ++row) columns.Append(catalog_->features(row));
    TOWERPS_RETURN_IF_ERROR(embedder_->Embed(data::Side::kItem, columns, n, &chunk, source));
    items_.middleRows(begin, n) = chunk;
  }
  ++refreshes_;
  return absl::OkStatus();
}

absl::Status NegativeMiner::Mine(const data::ExampleBatch& batch, int64_t step,
                                 ps::ParamSource* source, MinedNegatives* out) {
  out->rows.clear();
  out->owner.clear();
  absl::MutexLock lock(&mu_);
  if (last_refresh_step_ < 0 || step >= last_refresh_step_ + options_.every ||
      step < last_refresh_step_) {  // a rollback restarts the clock
    TOWERPS_RETURN_IF_ERROR(EmbedCatalog(source));
    last_refresh_step_ = step;
  }
  const int64_t b = static_cast<int64_t>(batch.size());
  if (b == 0 || items_.rows() == 0) return absl::OkStatus();
  TOWERPS_RETURN_IF_ERROR(embedder_->Embed(data::Side::kUser, batch.user, b, &users_, source));
  models::EnsureShape(b, items_.rows(), &scores_);
  scores_.noalias() = users_ * items_.transpose();
  for (int64_t i = 0; i < b; ++i) {
    std::span<const int64_t> known = positives_->Of(batch.user_ids[i]);
    excluded_.assign(known.begin(), known.end());
    const int64_t own = catalog_->RowOf(batch.item_ids[i]);  // in train, so already known
    if (own >= 0 && !std::binary_search(excluded_.begin(), excluded_.end(), own)) {
      excluded_.insert(std::lower_bound(excluded_.begin(), excluded_.end(), own), own);
    }
    SelectMined(std::span<const float>(scores_.data() + i * scores_.cols(), scores_.cols()),
                excluded_, options_.skip_top, options_.per_user, &scratch_, &out->rows);
    out->owner.resize(out->rows.size(), static_cast<int32_t>(i));
  }
  return absl::OkStatus();
}

}  // namespace towerps::worker
