// Retrieval quality of ranked top-K lists against held-out relevant items:
// Recall@K, NDCG@K, HitRate@K (averaged over queries) and item coverage@K, for
// several K at once. Definitions, exactly as computed: docs/evaluation.md.
// Thread-safe (pure functions over caller-owned inputs).
#ifndef TOWERPS_INDEX_METRICS_H_
#define TOWERPS_INDEX_METRICS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/json.h"
#include "index/exact_topk.h"

namespace towerps::index {

// Per-K averages; every vector is parallel to `ks`.
struct RetrievalMetrics {
  std::vector<int> ks;
  std::vector<double> recall;
  std::vector<double> ndcg;
  std::vector<double> hit_rate;
  // Distinct items in the top-K lists of the evaluated queries / num_items.
  std::vector<double> coverage;
  // Queries averaged over (those with at least one relevant item).
  int64_t queries = 0;
  // Queries without relevant items: left out of every average and of coverage.
  int64_t skipped_queries = 0;

  // Adds "<prefix>recall@K", "<prefix>ndcg@K", "<prefix>hit_rate@K",
  // "<prefix>coverage@K" for every K, then "<prefix>queries".
  void AddToJson(JsonObject* out, absl::string_view prefix = "") const;
  JsonObject ToJson() const;
};

// Scores `ranked` (n = ranked.num_queries() lists of ranked.k ids, -1 = padding)
// against relevant_ids[relevant_offsets[q] .. relevant_offsets[q+1]) for query q
// (duplicates count once). ks: each in [1, ranked.k], at least one.
// Returns InvalidArgument for malformed relevance lists (offsets size != n + 1,
// ids outside [0, num_items)), ranked ids outside [-1, num_items), bad ks, or
// num_items < 1.
absl::StatusOr<RetrievalMetrics> ComputeMetrics(const TopK& ranked,
                                                absl::Span<const int64_t> relevant_offsets,
                                                absl::Span<const int32_t> relevant_ids,
                                                int64_t num_items, absl::Span<const int> ks);

// One column of a metrics table.
struct LabeledMetrics {
  std::string label;  // e.g. "model", "popularity"
  const RetrievalMetrics* metrics;
};

// A fixed-width text table: one row per metric@K, one column per entry, and
// when there are exactly two columns a third with their ratio (first / second).
// All columns must share the same ks (CHECK: a programming error otherwise).
std::string FormatMetricsTable(absl::Span<const LabeledMetrics> columns);

}  // namespace towerps::index

#endif  // TOWERPS_INDEX_METRICS_H_
