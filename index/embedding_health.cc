#include "index/embedding_health.h"

#include <algorithm>
#include <cmath>

#include "common/json.h"
#include "common/status.h"
#include "data/schema.h"

namespace towerps::index {
std::vector<double> RowNorms(const float* vectors, int64_t n, int dim) {
  std::vector<double> norms(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const float* row = vectors + i * dim;
    double sum = 0;
    for (int d = 0; d < dim; ++d) sum += static_cast<double>(row[d]) * row[d];
    norms[i] = std::sqrt(sum);
  }
  return norms;
}

std::array<double, 7> NormQuantiles(std::vector<double> values) {
  std::array<double, 7> out{};
  if (values.empty()) return out;
  std::sort(values.begin(), values.end());
  const double qs[7] = {0, 0.10, 0.25, 0.50, 0.75, 0.90, 1};
  for (int k = 0; k < 7; ++k) {
    const double pos = qs[k] * static_cast<double>(values.size() - 1);
    const size_t lo = static_cast<size_t>(std::floor(pos));
    const size_t hi = std::min(lo + 1, values.size() - 1);
    out[k] = values[lo] + (pos - static_cast<double>(lo)) * (values[hi] - values[lo]);
  }
  return out;
}

NormSample::NormSample(int64_t capacity, uint64_t seed)
    : capacity_(std::max<int64_t>(capacity, 1)), rng_(seed) {}

void NormSample::Add(double norm) {
  if (!std::isfinite(norm)) {
    ++non_finite_;
    return;
  }
  min_ = count_ == 0 ? norm : std::min(min_, norm);
  max_ = count_ == 0 ? norm : std::max(max_, norm);
  ++count_;
  if (static_cast<int64_t>(sample_.size()) < capacity_) {
    sample_.push_back(norm);
    return;
  }
  // Algorithm R: the count_-th value replaces a uniform slot with probability
  // capacity / count_, so every value seen is in the sample with that probability.
  const uint64_t slot = std::uniform_int_distribution<uint64_t>(0, count_ - 1)(rng_);
  if (slot < static_cast<uint64_t>(capacity_)) sample_[slot] = norm;
}

std::array<double, 7> NormSample::Quantiles() const {
  std::array<double, 7> q = NormQuantiles(sample_);
  if (count_ > 0) {
    q[0] = min_;
    q[6] = max_;
  }
  return q;
}

NormBins::NormBins(double lo, double hi, int bins) : counts_(bins, 0) {
  // Values equal to the 6 significant digits JSON numbers are written with would give
  // edges that print equal: they count as one value, in a unit-wide range around it.
  one_value_ = !(hi - lo > 1e-6 * std::max(1.0, std::abs(hi)));
  if (one_value_) {
    lo = std::round(lo * 1e6) / 1e6 - 0.5;
    hi = lo + 1;
  }
  edges_.resize(bins + 1);
  const double width = (hi - lo) / bins;
  for (int b = 0; b <= bins; ++b) edges_[b] = lo + b * width;
  edges_[bins] = hi;
}

void NormBins::Add(double value) {
  const int bins = static_cast<int>(counts_.size());
  if (one_value_) {
    ++counts_[bins / 2];
    return;
  }
  const double width = (edges_.back() - edges_.front()) / bins;
  const double b = std::floor((value - edges_.front()) / width);
  ++counts_[static_cast<int>(std::clamp(b, 0.0, static_cast<double>(bins - 1)))];
}

void NormHistogram(absl::Span<const double> values, int bins, std::vector<double>* edges,
                   std::vector<int64_t>* counts) {
  double lo = 0, hi = 0;
  if (!values.empty()) {
    auto [min, max] = std::minmax_element(values.begin(), values.end());
    lo = *min;
    hi = *max;
  }
  NormBins histogram(lo, hi, bins);
  for (double v : values) histogram.Add(v);
  *edges = histogram.edges();
  *counts = histogram.counts();
}

double MeanPairwiseCosine(const float* vectors, int64_t n, int dim) {
  std::vector<double> sum(dim, 0.0);
  int64_t counted = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* row = vectors + i * dim;
    double norm2 = 0;
    for (int d = 0; d < dim; ++d) norm2 += static_cast<double>(row[d]) * row[d];
    if (!(norm2 > 0) || !std::isfinite(norm2)) continue;
    const double inv = 1.0 / std::sqrt(norm2);
    for (int d = 0; d < dim; ++d) sum[d] += row[d] * inv;
    ++counted;
  }
  if (counted < 2) return std::numeric_limits<double>::quiet_NaN();
  double sum2 = 0;
  for (double s : sum) sum2 += s * s;
  const double c = static_cast<double>(counted);
  // Each |u_i|^2 = 1 term of |sum u|^2 is a self-pair: subtract them, divide by the pairs.
  return std::clamp((sum2 - c) / (c * (c - 1)), -1.0, 1.0);
}

EmbeddingHealth ComputeEmbeddingHealth(const float* items, int64_t num_items, const float* users,
                                       int64_t num_users, int dim,
                                       const TowerNormalization& normalized) {
  EmbeddingHealth h;
  h.items = num_items;
  h.users = num_users;
  if (!normalized.item) h.item_norm_quantiles = NormQuantiles(RowNorms(items, num_items, dim));
  if (!normalized.user) h.user_norm_quantiles = NormQuantiles(RowNorms(users, num_users, dim));
  h.item_mean_pairwise_cosine = MeanPairwiseCosine(items, num_items, dim);
  h.collapse_warning = h.item_mean_pairwise_cosine > h.collapse_threshold;
  return h;
}

absl::StatusOr<RowNormDistribution> TableRowNorms(const ps::CheckpointParams& checkpoint,
                                                  uint32_t table) {
  constexpr int64_t kChunkRows = 4096;
  TOWERPS_ASSIGN_OR_RETURN(const int dim, checkpoint.TableDim(table));
  NormSample sample;
  auto chunk_norms = [dim](absl::Span<const uint64_t> keys, const float* values) {
    return RowNorms(values, static_cast<int64_t>(keys.size()), dim);
  };
  TOWERPS_RETURN_IF_ERROR(checkpoint.ForEachRow(
      table, kChunkRows, [&](absl::Span<const uint64_t> keys, const float* values) {
        for (double norm : chunk_norms(keys, values)) sample.Add(norm);
        return absl::OkStatus();
      }));
  RowNormDistribution out;
  out.rows = sample.count();
  out.quantiles = sample.Quantiles();
  NormBins histogram(sample.min(), sample.max(), kNormHistogramBins);
  TOWERPS_RETURN_IF_ERROR(checkpoint.ForEachRow(
      table, kChunkRows, [&](absl::Span<const uint64_t> keys, const float* values) {
        for (double norm : chunk_norms(keys, values)) {
          if (std::isfinite(norm)) histogram.Add(norm);
        }
        return absl::OkStatus();
      }));
  out.edges = histogram.edges();
  out.counts = histogram.counts();
  return out;
}

std::string EmbeddingHealth::ToJson() const {
  auto rows = [](const std::optional<RowNormDistribution>& d) {
    return d ? std::to_string(d->rows) : std::string("null");
  };
  auto quantiles = [](const std::optional<RowNormDistribution>& d) {
    return d ? JsonArray(d->quantiles) : std::string("null");
  };
  std::string histogram = "null";
  if (item_id_norms) {
    JsonObject o;
    o.AddRaw("edges", JsonArray(item_id_norms->edges))
        .AddRaw("counts", JsonArray(item_id_norms->counts));
    histogram = o.ToString();
  }
  JsonObject o;
  o.Add("items", items)
      .Add("users", users)
      .Add("item_coverage", item_coverage)
      .AddRaw("item_id_rows", rows(item_id_norms))
      .AddRaw("item_id_norm_quantiles", quantiles(item_id_norms))
      .AddRaw("item_id_norm_histogram", histogram)
      .AddRaw("user_id_rows", rows(user_id_norms))
      .AddRaw("user_id_norm_quantiles", quantiles(user_id_norms));
  if (item_norm_quantiles) o.AddRaw("item_norm_quantiles", JsonArray(*item_norm_quantiles));
  if (user_norm_quantiles) o.AddRaw("user_norm_quantiles", JsonArray(*user_norm_quantiles));
  o.Add("item_mean_pairwise_cosine", item_mean_pairwise_cosine)
      .Add("collapse_threshold", collapse_threshold)
      .Add("collapse_warning", collapse_warning);
  return o.ToString();
}

absl::StatusOr<double> RowCoverage(const ps::CheckpointParams& checkpoint, uint32_t table,
                                   absl::Span<const uint64_t> keys) {
  absl::StatusOr<int64_t> existing = checkpoint.CountExistingRows(table, keys);
  if (!existing.ok()) return existing.status();
  if (keys.empty()) return std::numeric_limits<double>::quiet_NaN();
  return static_cast<double>(*existing) / static_cast<double>(keys.size());
}

namespace {

// The bound feature named `name` among `features`, or nullptr.
const worker::BoundFeature* FindFeature(const std::vector<worker::BoundFeature>& features,
                                        const char* name) {
  for (const worker::BoundFeature& f : features) {
    if (f.spec.feature == name) return &f;
  }
  return nullptr;
}

}  // namespace

absl::StatusOr<double> ItemIdCoverage(const TowerEmbedder& embedder) {
  constexpr double kUnknown = std::numeric_limits<double>::quiet_NaN();
  if (embedder.checkpoint() == nullptr) return kUnknown;
  const worker::BoundFeature* id_feature =
      FindFeature(embedder.model().item_features, data::kItemIdFeature);
  if (id_feature == nullptr) return kUnknown;
  const worker::ItemCatalog& catalog = embedder.catalog();
  std::vector<uint64_t> keys;
  keys.reserve(static_cast<size_t>(catalog.size()));
  for (int64_t row = 0; row < catalog.size(); ++row) {
    const data::SideFeatures& features = catalog.features(row);
    if (id_feature->slot >= features.num_slots()) continue;
    for (uint64_t key : features.slot(id_feature->slot)) keys.push_back(key);
  }
  return RowCoverage(*embedder.checkpoint(), static_cast<uint32_t>(id_feature->spec.table), keys);
}

absl::Status MeasureCheckpointHealth(const TowerEmbedder& embedder, EmbeddingHealth* health) {
  TOWERPS_ASSIGN_OR_RETURN(health->item_coverage, ItemIdCoverage(embedder));
  const ps::CheckpointParams* checkpoint = embedder.checkpoint();
  if (checkpoint == nullptr) return absl::OkStatus();
  const worker::BoundModel& model = embedder.model();
  if (const auto* f = FindFeature(model.item_features, data::kItemIdFeature)) {
    TOWERPS_ASSIGN_OR_RETURN(health->item_id_norms,
                             TableRowNorms(*checkpoint, static_cast<uint32_t>(f->spec.table)));
  }
  if (const auto* f = FindFeature(model.user_features, data::kUserIdFeature)) {
    TOWERPS_ASSIGN_OR_RETURN(health->user_id_norms,
                             TableRowNorms(*checkpoint, static_cast<uint32_t>(f->spec.table)));
  }
  return absl::OkStatus();
}

}  // namespace towerps::index
