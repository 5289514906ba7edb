#include "index/embedding_health.h"

#include <algorithm>
#include <cmath>

#include "common/json.h"
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

void NormHistogram(absl::Span<const double> values, int bins, std::vector<double>* edges,
                   std::vector<int64_t>* counts) {
  double lo = 0, hi = 0;
  if (!values.empty()) {
    auto [min, max] = std::minmax_element(values.begin(), values.end());
    lo = *min;
    hi = *max;
  }
  // Values equal to the 6 significant digits JSON numbers are written with (L2-
  // normalised embeddings: every norm is 1 +- 1e-7) would give edges that print
  // equal: they count as one value, in a unit-wide range around it.
  const bool one_value = !(hi - lo > 1e-6 * std::max(1.0, std::abs(hi)));
  if (one_value) {
    lo = std::round(lo * 1e6) / 1e6 - 0.5;
    hi = lo + 1;
  }
  const double width = (hi - lo) / bins;
  edges->resize(bins + 1);
  for (int b = 0; b <= bins; ++b) (*edges)[b] = lo + b * width;
  (*edges)[bins] = hi;
  counts->assign(bins, 0);
  if (one_value) {
    (*counts)[bins / 2] = static_cast<int64_t>(values.size());
    return;
  }
  for (double v : values) {
    const int b = static_cast<int>((v - lo) / width);
    ++(*counts)[std::clamp(b, 0, bins - 1)];
  }
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
                                       int64_t num_users, int dim) {
  EmbeddingHealth h;
  h.items = num_items;
  h.users = num_users;
  const std::vector<double> item_norms = RowNorms(items, num_items, dim);
  h.item_norm_quantiles = NormQuantiles(item_norms);
  h.user_norm_quantiles = NormQuantiles(RowNorms(users, num_users, dim));
  NormHistogram(item_norms, kNormHistogramBins, &h.item_norm_edges, &h.item_norm_counts);
  h.item_mean_pairwise_cosine = MeanPairwiseCosine(items, num_items, dim);
  h.collapse_warning = h.item_mean_pairwise_cosine > kCollapseCosineThreshold;
  return h;
}

std::string EmbeddingHealth::ToJson() const {
  JsonObject histogram;
  histogram.AddRaw("edges", JsonArray(item_norm_edges))
      .AddRaw("counts", JsonArray(item_norm_counts));
  JsonObject o;
  o.Add("items", items)
      .Add("users", users)
      .Add("item_coverage", item_coverage)
      .AddRaw("item_norm_quantiles", JsonArray(item_norm_quantiles))
      .AddRaw("user_norm_quantiles", JsonArray(user_norm_quantiles))
      .AddRaw("item_norm_histogram", histogram.ToString())
      .Add("item_mean_pairwise_cosine", item_mean_pairwise_cosine)
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

absl::StatusOr<double> ItemIdCoverage(const TowerEmbedder& embedder) {
  constexpr double kUnknown = std::numeric_limits<double>::quiet_NaN();
  if (embedder.checkpoint() == nullptr) return kUnknown;
  const worker::BoundFeature* id_feature = nullptr;
  for (const worker::BoundFeature& f : embedder.model().item_features) {
    if (f.spec.feature == data::kItemIdFeature) id_feature = &f;
  }
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

}  // namespace towerps::index
