// Exact (brute-force) top-K retrieval over every item, and the popularity
// baseline, through one ranking path.
//
// Scores of a block of queries against a tile of items are produced into a
// buffer (sgemm for ExactTopK, the popularity score row for PopularityTopK),
// each query's excluded items are set to -inf, and one scan per row keeps the
// K best (a candidate buffer cut back with nth_element whenever it fills, so
// almost every score costs one comparison). Memory stays bounded by
// threads * (query_block * item_block floats + query_block * 2k candidates)
// whatever the item count (query_block shrinks for very large k).
//
// Ranking order: descending score, ties broken by the lower item row. Excluded
// items are never returned; a query with fewer than K eligible items gets its
// remaining slots padded with id -1 and score -inf.
//
// Thread-safety: the functions are thread-compatible with respect to OpenBLAS:
// with options.threads > 1 they set OpenBLAS's process-wide thread count to 1
// for the duration of the call (restoring it afterwards), so do not run other
// BLAS work concurrently with such a call if its thread count matters.
#ifndef TOWERPS_INDEX_EXACT_TOPK_H_
#define TOWERPS_INDEX_EXACT_TOPK_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace towerps::index {

struct TopKOptions {
  // Worker threads, each ranking whole query blocks (std::thread; 1 = the
  // calling thread only, OpenBLAS keeps its own thread count). With more than
  // one, every BLAS call runs single-threaded to avoid oversubscription.
  int threads = 1;
  // Queries scored per sgemm call.
  int query_block = 256;
  // Items scored per sgemm call; bounds the score buffer to
  // query_block * item_block floats per thread (default 4 MiB).
  int item_block = 4096;

  // InvalidArgument unless threads in [1, 1024] and both blocks >= 1.
  absl::Status Validate() const;
};

// The K best item rows per query. Row-major: ids and scores hold n * k entries,
// query q's list is [q * k, (q + 1) * k), best first. Padding: id -1, score -inf.
struct TopK {
  int k = 0;
  std::vector<int32_t> ids;
  std::vector<float> scores;

  int64_t num_queries() const { return k == 0 ? 0 : static_cast<int64_t>(ids.size()) / k; }
  absl::Span<const int32_t> Ids(int64_t q) const {
    return absl::MakeConstSpan(ids).subspan(q * k, k);
  }
};

// Exact inner-product top-K of every query against every item.
//   queries: n * d row-major (typically L2-normalised user embeddings).
//   items:   m * d row-major.
//   exclude_offsets: n + 1, exclude_ids: exclude_offsets[n] - the item rows
//     query q must never get back are exclude_ids[offsets[q] .. offsets[q+1]).
//     Order and duplicates do not matter. Both may be empty spans to mean "no
//     exclusions" for every query.
//   k: 1 <= k <= m.
// Returns InvalidArgument for n < 0, m < 1 (or m > 2^31 - 1), d < 1, k out of
// range, a null array with a non-zero size, non-finite inputs, malformed
// exclusion lists or an exclusion id outside [0, m), or invalid options.
// Blocks until done.
absl::StatusOr<TopK> ExactTopK(const float* queries, int64_t n, const float* items,
                               int64_t m, int d, int k,
                               absl::Span<const int64_t> exclude_offsets,
                               absl::Span<const int32_t> exclude_ids,
                               const TopKOptions& options = {});

// The popularity baseline: every query ranks all items by log(1 + count)
// (item_counts: m training frequencies, finite and >= 0), with its own
// exclusions (same CSR shape as ExactTopK, n = n_queries). Same ordering,
// padding and errors as ExactTopK (negative or non-finite counts included).
absl::StatusOr<TopK> PopularityTopK(absl::Span<const double> item_counts, int64_t n_queries,
                                    int k, absl::Span<const int64_t> exclude_offsets,
                                    absl::Span<const int32_t> exclude_ids,
                                    const TopKOptions& options = {});

}  // namespace towerps::index

#endif  // TOWERPS_INDEX_EXACT_TOPK_H_
