// `towerps evaluate --ann`: retrieval quality through a sharded ANN index beside
// exact retrieval on the same embeddings (the EvaluationSet), the index recall
// (overlap of the ANN top-K with the exact top-K), and single-query latency
// p50/p99 and QPS at several efSearch values. Thread-compatible (one call at a time).
#ifndef TOWERPS_INDEX_ANN_EVALUATION_H_
#define TOWERPS_INDEX_ANN_EVALUATION_H_

#include <vector>

#include "absl/status/statusor.h"
#include "common/json.h"
#include "index/evaluation.h"
#include "index/metrics.h"
#include "index/sharded_index.h"

namespace towerps::index {

struct AnnEvaluationOptions {
  // Cut-offs K (the exact result's ks).
  std::vector<int> ks = {10, 50, 100};
  // efSearch values swept; each >= 1.
  std::vector<int> ef_searches = {16, 64, 128, 256};
  // The efSearch whose figures are reported as ann_* / index_recall@K (added to the
  // sweep when missing).
  int ef_search = 128;

  absl::Status Validate() const;
};

struct AnnSweepPoint {
  int ef_search = 0;
  RetrievalMetrics metrics;          // ANN Recall/NDCG/... @K
  std::vector<double> index_recall;  // parallel to metrics.ks
  double p50_us = 0, p99_us = 0;     // one query at a time, calling thread
  double qps = 0;                    // queries / total search seconds, one thread
};

struct AnnEvaluationResult {
  std::vector<AnnSweepPoint> sweep;  // ascending efSearch
  int primary = 0;                   // index of options.ef_search in sweep

  // Adds ann_recall@K, ann_ndcg@K, ... (the primary point), index_recall@K,
  // ann_ef_search, ann_p50_us, ann_p99_us, ann_qps, and per swept value
  // ef<E>_index_recall@<first K>, ef<E>_p50_us, ef<E>_p99_us, ef<E>_qps.
  void AddToJson(JsonObject* out) const;
  // A text table, one row per efSearch.
  std::string ToTable() const;
};

// Ranks every query of `set` through `index` (whose items must be the set's items,
// as keys) with the set's exclusions and scores it against `exact` (EvaluateExactOn
// of the same set). Errors: InvalidArgument (options, dim mismatch), FailedPrecondition
// when the index holds keys unknown to the set, the index's errors.
absl::StatusOr<AnnEvaluationResult> EvaluateAnn(const EvaluationSet& set,
                                                const EvaluationResult& exact,
                                                const ShardedIndex& index,
                                                const AnnEvaluationOptions& options);

}  // namespace towerps::index

#endif  // TOWERPS_INDEX_ANN_EVALUATION_H_
