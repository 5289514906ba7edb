// Embedding health of a model, what `towerps evaluate` reports under
// "embedding_health" (schema: docs/metrics.md, "evaluations.jsonl"):
//   - the L2 norm distribution of the checkpoint's ID embedding rows: every row of the
//     table the item tower's item_id feature reads (quantiles and a histogram) and of
//     the user_id feature's table (quantiles). Tower outputs are L2-normalised by
//     default, so their norms say nothing; these rows do (rarely seen items stay near
//     their init norm, popular ones grow, a blown-up row shows). The norms of a
//     tower's output are reported only for a tower that is not L2-normalised;
//   - item coverage: the fraction of catalog items whose item_id embedding row exists
//     in the checkpoint (index/README.md defines it);
//   - the exact mean pairwise cosine of the item tower's outputs and a collapse warning
//     when it exceeds kCollapseCosineThreshold (every item pointing one way).
// Pure functions over arrays (`vectors: n * dim`, row-major) and read-only checkpoint
// walks in bounded memory; thread-compatible.
#ifndef TOWERPS_INDEX_EMBEDDING_HEALTH_H_
#define TOWERPS_INDEX_EMBEDDING_HEALTH_H_

#include <array>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "index/embedder.h"
#include "ps/checkpoint_params.h"

namespace towerps::index {

// Above this mean pairwise cosine of the item tower's outputs the items are reported
// as collapsed. Random directions give ~0 and identical ones 1; trained towers share a
// common direction (a popularity component): healthy ones measured 0.40 to 0.75, towers
// collapsed by a too-high dense learning rate (ranking like the popularity baseline)
// 0.88 to 0.94 (docs/metrics.md, "evaluations.jsonl", has the table).
inline constexpr double kCollapseCosineThreshold = 0.85;
// Equal-width bins of the item_id norm histogram.
inline constexpr int kNormHistogramBins = 20;
// Norms kept (a uniform reservoir sample) for the quantiles of a table's rows.
inline constexpr int64_t kNormSampleSize = 65536;

// The norm distribution of a stream of values in bounded memory: the count, the exact
// min and max, and a uniform reservoir sample (Algorithm R, deterministic seed) of at
// most `capacity` values for the other quantiles (exact while count <= capacity).
// Non-finite values are left out (counted in non_finite()). Thread-compatible.
class NormSample {
 public:
  explicit NormSample(int64_t capacity = kNormSampleSize, uint64_t seed = 1);
  void Add(double norm);
  int64_t count() const { return count_; }
  int64_t non_finite() const { return non_finite_; }
  double min() const { return min_; }
  double max() const { return max_; }
  // {min, p10, p25, p50, p75, p90, max} (NormQuantiles of the sample, min and max
  // exact); all zeros when empty.
  std::array<double, 7> Quantiles() const;

 private:
  const int64_t capacity_;
  std::mt19937_64 rng_;
  std::vector<double> sample_;
  int64_t count_ = 0;
  int64_t non_finite_ = 0;
  double min_ = 0, max_ = 0;
};

// The norm distribution of the rows of one embedding table.
struct RowNormDistribution {
  int64_t rows = 0;                   // rows measured (with finite values)
  std::array<double, 7> quantiles{};  // NormSample::Quantiles
  // kNormHistogramBins + 1 edges and kNormHistogramBins counts summing to `rows`.
  std::vector<double> edges;
  std::vector<int64_t> counts;
};

struct EmbeddingHealth {
  int64_t items = 0;  // item tower outputs measured (the catalog)
  int64_t users = 0;  // user tower outputs measured (evaluate: one per query)
  // In [0, 1]; NaN (JSON null) when unknown: no item_id feature, or a live source.
  double item_coverage = std::numeric_limits<double>::quiet_NaN();
  // Norms of the rows of the item_id / user_id feature's table in the checkpoint;
  // nullopt (JSON null) when the tower has no such feature or there is no checkpoint.
  std::optional<RowNormDistribution> item_id_norms;
  std::optional<RowNormDistribution> user_id_norms;
  // Norms of the tower outputs, set only for a tower that is not L2-normalised (the
  // JSON key is omitted otherwise).
  std::optional<std::array<double, 7>> item_norm_quantiles;
  std::optional<std::array<double, 7>> user_norm_quantiles;
  // MeanPairwiseCosine of the items; NaN (null) with fewer than 2 non-zero items.
  double item_mean_pairwise_cosine = std::numeric_limits<double>::quiet_NaN();
  double collapse_threshold = kCollapseCosineThreshold;
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

// `bins` equal-width bins from lo to hi (edges: bins + 1, counts: bins); a value at or
// past hi falls in the last bin, one below lo in the first. When lo and hi are equal to
// 6 significant digits (what JSON shows) the bins span lo - 0.5 .. lo + 0.5 and every
// value falls in the middle bin. Thread-compatible.
class NormBins {
 public:
  NormBins(double lo, double hi, int bins);
  void Add(double value);
  const std::vector<double>& edges() const { return edges_; }
  const std::vector<int64_t>& counts() const { return counts_; }

 private:
  bool one_value_ = false;
  std::vector<double> edges_;
  std::vector<int64_t> counts_;
};

// NormBins from min to max of `values` (0 +- 0.5 when empty), every value added.
void NormHistogram(absl::Span<const double> values, int bins, std::vector<double>* edges,
                   std::vector<int64_t>* counts);

// Exact mean of cos(v_i, v_j) over all pairs i < j of the non-zero rows (a zero row
// has no direction and is left out): with u_i = v_i / |v_i| and n such rows,
// (|sum_i u_i|^2 - n) / (n (n - 1)), in O(n * dim) with double sums. NaN for n < 2.
double MeanPairwiseCosine(const float* vectors, int64_t n, int dim);

// Whether each tower L2-normalises its output (models::TowerConfig::l2_normalize).
struct TowerNormalization {
  bool item = true;
  bool user = true;
};

// The tower-output figures (items, users, the cosine and the collapse warning, and a
// side's norm quantiles when `normalized` says its tower is not L2-normalised); the
// checkpoint's figures stay unset. items: num_items * dim, users: num_users * dim.
EmbeddingHealth ComputeEmbeddingHealth(const float* items, int64_t num_items, const float* users,
                                       int64_t num_users, int dim,
                                       const TowerNormalization& normalized);

// Streams the rows of table `table` of `checkpoint` twice (chunks of 4096 rows: memory
// is the chunk, a NormSample and the bins, not the table): the count, min, max and
// sample first, then the kNormHistogramBins-bin histogram between that min and max.
// InvalidArgument for a table out of range.
absl::StatusOr<RowNormDistribution> TableRowNorms(const ps::CheckpointParams& checkpoint,
                                                  uint32_t table);

// Fraction of `keys` that have a row in table `table` of `checkpoint` (duplicates
// counted each time). NaN for no keys; InvalidArgument for a table out of range.
absl::StatusOr<double> RowCoverage(const ps::CheckpointParams& checkpoint, uint32_t table,
                                   absl::Span<const uint64_t> keys);

// Item coverage of the embedder's checkpoint: over the catalog's items, the fraction
// whose item_id feature key (data::kItemIdFeature) has a row in the table that
// feature reads. NaN when the item tower has no item_id feature or the embedder reads
// a live source instead of a checkpoint.
absl::StatusOr<double> ItemIdCoverage(const TowerEmbedder& embedder);

// The checkpoint's figures of an EmbeddingHealth (item_coverage, item_id_norms,
// user_id_norms) measured on the embedder's checkpoint; left unset as documented
// there. Errors: those of TableRowNorms and ItemIdCoverage.
absl::Status MeasureCheckpointHealth(const TowerEmbedder& embedder, EmbeddingHealth* health);

}  // namespace towerps::index

#endif  // TOWERPS_INDEX_EMBEDDING_HEALTH_H_
