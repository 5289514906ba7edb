// Embedding health of a model's retrieval embeddings, what `towerps evaluate` reports
// under "embedding_health" (schema: docs/metrics.md, "evaluations.jsonl"):
//   - the L2 norm distribution of the item and user embeddings (quantiles, and a
//     histogram of the item norms);
//   - item coverage: the fraction of catalog items whose item_id embedding row exists
//     in the checkpoint (index/README.md defines it);
//   - the exact mean pairwise cosine of the item embeddings and a collapse warning
//     when it exceeds kCollapseCosineThreshold (every item pointing one way).
// Pure functions over arrays (`vectors: n * dim`, row-major); thread-compatible.
#ifndef TOWERPS_INDEX_EMBEDDING_HEALTH_H_
#define TOWERPS_INDEX_EMBEDDING_HEALTH_H_

#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "index/embedder.h"
#include "ps/checkpoint_params.h"

namespace towerps::index {

// Above this mean pairwise cosine the item embeddings are reported as collapsed:
// random directions give ~0, a healthy trained catalog stays well below 0.5 (items
// must be told apart by a dot product), identical vectors give 1.
inline constexpr double kCollapseCosineThreshold = 0.5;
// Equal-width bins of the item norm histogram.
inline constexpr int kNormHistogramBins = 20;

struct EmbeddingHealth {
  int64_t items = 0;  // item embeddings measured
  int64_t users = 0;  // user embeddings measured (evaluate: one per query)
  // In [0, 1]; NaN (JSON null) when unknown: no item_id feature, or a live source.
  double item_coverage = std::numeric_limits<double>::quiet_NaN();
  // {min, p10, p25, p50, p75, p90, max} of the norms (NormQuantiles).
  std::array<double, 7> item_norm_quantiles{};
  std::array<double, 7> user_norm_quantiles{};
  // kNormHistogramBins + 1 edges and kNormHistogramBins counts (NormHistogram).
  std::vector<double> item_norm_edges;
  std::vector<int64_t> item_norm_counts;
  // MeanPairwiseCosine of the items; NaN (null) with fewer than 2 non-zero items.
  double item_mean_pairwise_cosine = std::numeric_limits<double>::quiet_NaN();
  bool collapse_warning = false;

  // The "embedding_health" JSON object (keys as in docs/metrics.md).
  std::string ToJson() const;
};

// L2 norm of each row: vectors: n * dim -> n.
std::vector<double> RowNorms(const float* vectors, int64_t n, int dim);

// {min, p10, p25, p50, p75, p90, max} of `values`, each quantile q interpolated
// linearly between the sorted values at ranks floor and ceil of q * (n - 1) (numpy's
// default). All zeros when `values` is empty.
std::array<double, 7> NormQuantiles(std::vector<double> values);

// `bins` equal-width bins from min to max of `values` (a value equal to max falls in
// the last bin): edges: bins + 1, counts: bins. When every value is equal to 6
// significant digits (what JSON shows; or there is none) the bins span
// value - 0.5 .. value + 0.5 (0 for none), so the values fall in the middle bin.
void NormHistogram(absl::Span<const double> values, int bins, std::vector<double>* edges,
                   std::vector<int64_t>* counts);

// Exact mean of cos(v_i, v_j) over all pairs i < j of the non-zero rows (a zero row
// has no direction and is left out): with u_i = v_i / |v_i| and n such rows,
// (|sum_i u_i|^2 - n) / (n (n - 1)), in O(n * dim) with double sums. NaN for n < 2.
double MeanPairwiseCosine(const float* vectors, int64_t n, int dim);

// Everything but item_coverage (left NaN): items: num_items * dim, users:
// num_users * dim.
EmbeddingHealth ComputeEmbeddingHealth(const float* items, int64_t num_items, const float* users,
                                       int64_t num_users, int dim);

// Fraction of `keys` that have a row in table `table` of `checkpoint` (duplicates
// counted each time). NaN for no keys; InvalidArgument for a table out of range.
absl::StatusOr<double> RowCoverage(const ps::CheckpointParams& checkpoint, uint32_t table,
                                   absl::Span<const uint64_t> keys);

// Item coverage of the embedder's checkpoint: over the catalog's items, the fraction
// whose item_id feature key (data::kItemIdFeature) has a row in the table that
// feature reads. NaN when the item tower has no item_id feature or the embedder reads
// a live source instead of a checkpoint.
absl::StatusOr<double> ItemIdCoverage(const TowerEmbedder& embedder);

}  // namespace towerps::index

#endif  // TOWERPS_INDEX_EMBEDDING_HEALTH_H_
