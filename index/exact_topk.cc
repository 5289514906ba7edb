#include "index/exact_topk.h"

#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <thread>

#include "absl/functional/function_ref.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "index/id_lists.h"

namespace towerps::index {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Fills out[r * ni + j] with the score of query q0 + r against item i0 + j,
// r < nq, j < ni. Called concurrently from the worker threads.
using ScoreTileFn =
    absl::FunctionRef<void(int64_t q0, int64_t nq, int64_t i0, int64_t ni, float* out)>;

struct Candidate {
  float score;
  int32_t id;
};

// a ranks ahead of b: higher score, then lower id.
inline bool Better(const Candidate& a, const Candidate& b) {
  return a.score > b.score || (a.score == b.score && a.id < b.id);
}

// The K best seen so far for one query: candidates above `threshold` are
// appended to a buffer of 2k slots; a full buffer is cut back to its k best
// with nth_element, and the k-th becomes the new threshold. Amortised O(1) per
// accepted candidate, and most scores are rejected by one comparison.
struct RowSelector {
  Candidate* slots;  // 2k entries
  int size = 0;
  // Scores must beat this to enter. -inf until k candidates were kept, which
  // also keeps exclusions (-inf) and NaN out.
  float threshold = kNegInf;

  // Leaves the k best (by Better) in slots[0, k) and raises the threshold.
  void Compact(int k) {
    std::nth_element(slots, slots + k - 1, slots + size, Better);
    size = k;
    threshold = slots[k - 1].score;
  }
};

// Feeds one row of a tile (item rows i0 .. i0 + ni) into `sel`. Items arrive in
// increasing row order across tiles, so a later score equal to the threshold
// can never displace a kept candidate (the kept one has the lower row) and
// need not enter.
inline void ScanRow(const float* row, int64_t i0, int64_t ni, int k, RowSelector* sel) {
  const int capacity = 2 * k;
  float threshold = sel->threshold;
  for (int64_t j = 0; j < ni; ++j) {
    const float s = row[j];
    if (s > threshold) {  // NaN and -inf never pass.
      sel->slots[sel->size++] = {s, static_cast<int32_t>(i0 + j)};
      if (sel->size == capacity) {
        sel->Compact(k);
        threshold = sel->threshold;
      }
    }
  }
}

// Restores OpenBLAS's thread count on scope exit.
class ScopedBlasThreads {
 public:
  explicit ScopedBlasThreads(bool single) : previous_(single ? openblas_get_num_threads() : 0) {
    if (single) openblas_set_num_threads(1);
  }
  ~ScopedBlasThreads() {
    if (previous_ > 0) openblas_set_num_threads(previous_);
  }
  ScopedBlasThreads(const ScopedBlasThreads&) = delete;
  ScopedBlasThreads& operator=(const ScopedBlasThreads&) = delete;

 private:
  const int previous_;
};

// The one ranking path: validated inputs in, n * k results out.
TopK RankAllItems(int64_t n, int64_t m, int k, absl::Span<const int64_t> exclude_offsets,
                  absl::Span<const int32_t> exclude_ids, const TopKOptions& options,
                  ScoreTileFn score_tile) {
  TopK result;
  result.k = k;
  result.ids.assign(n * k, -1);
  result.scores.assign(n * k, kNegInf);
  if (n == 0) return result;

  // Candidate buffers take query_block * 2k slots; for a very large k shrink the
  // block so they stay near 64 MiB.
  constexpr int64_t kMaxCandidates = int64_t{1} << 22;
  const int64_t query_block = std::min<int64_t>(
      {options.query_block, n, std::max<int64_t>(1, kMaxCandidates / (2 * int64_t{k}))});
  const int64_t item_block = std::min<int64_t>(options.item_block, m);
  const int64_t num_blocks = (n + query_block - 1) / query_block;
  const bool has_exclusions = !exclude_ids.empty();
  std::atomic<int64_t> next_block{0};

  auto worker = [&] {
    // Not value-initialised: the score function overwrites every entry it reads.
    std::unique_ptr<float[]> tile(new float[query_block * item_block]);
    std::vector<Candidate> slots(query_block * 2 * k);
    std::vector<RowSelector> selectors(query_block);
    for (int64_t b = next_block++; b < num_blocks; b = next_block++) {
      const int64_t q0 = b * query_block;
      const int64_t nq = std::min(query_block, n - q0);
      for (int64_t r = 0; r < nq; ++r) selectors[r] = {slots.data() + r * 2 * k};
      for (int64_t i0 = 0; i0 < m; i0 += item_block) {
        const int64_t ni = std::min(item_block, m - i0);
        score_tile(q0, nq, i0, ni, tile.get());
        for (int64_t r = 0; r < nq; ++r) {
          float* row = tile.get() + r * ni;
          if (has_exclusions) {
            for (int64_t e = exclude_offsets[q0 + r]; e < exclude_offsets[q0 + r + 1]; ++e) {
              const int64_t id = exclude_ids[e];
              if (id >= i0 && id < i0 + ni) row[id - i0] = kNegInf;
            }
          }
          ScanRow(row, i0, ni, k, &selectors[r]);
        }
      }
      for (int64_t r = 0; r < nq; ++r) {
        RowSelector& sel = selectors[r];
        if (sel.size > k) sel.Compact(k);
        std::sort(sel.slots, sel.slots + sel.size, Better);
        for (int i = 0; i < sel.size; ++i) {
          result.ids[(q0 + r) * k + i] = sel.slots[i].id;
          result.scores[(q0 + r) * k + i] = sel.slots[i].score;
        }
      }
    }
  };

  const int threads = static_cast<int>(std::min<int64_t>(options.threads, num_blocks));
  if (threads <= 1) {
    worker();
    return result;
  }
  ScopedBlasThreads single_blas(true);
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (int t = 0; t < threads; ++t) pool.emplace_back(worker);
  for (std::thread& th : pool) th.join();
  return result;
}

// Shared argument checks of both entry points.
absl::Status ValidateRanking(int64_t n, int64_t m, int k,
                             absl::Span<const int64_t> exclude_offsets,
                             absl::Span<const int32_t> exclude_ids,
                             const TopKOptions& options) {
  TOWERPS_RETURN_IF_ERROR(options.Validate());
  if (n < 0) return absl::InvalidArgumentError(absl::StrCat("negative query count ", n));
  if (m < 1 || m > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat("item count ", m, " outside [1, 2^31 - 1]"));
  }
  if (k < 1 || k > m) {
    return absl::InvalidArgumentError(
        absl::StrCat("k = ", k, " outside [1, number of items = ", m, "]"));
  }
  if (exclude_offsets.empty() && exclude_ids.empty()) return absl::OkStatus();
  return ValidateIdLists("exclusions", n, m, exclude_offsets, exclude_ids);
}

absl::Status CheckFinite(const char* what, const float* values, int64_t rows, int d) {
  for (int64_t i = 0; i < rows * d; ++i) {
    if (!std::isfinite(values[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " row ", i / d, " holds a non-finite value"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status TopKOptions::Validate() const {
  if (threads < 1 || threads > 1024) {
    return absl::InvalidArgumentError(absl::StrCat("threads = ", threads, " outside [1, 1024]"));
  }
  if (query_block < 1 || item_block < 1) {
    return absl::InvalidArgumentError("query_block and item_block must be >= 1");
  }
  return absl::OkStatus();
}

absl::StatusOr<TopK> ExactTopK(const float* queries, int64_t n, const float* items,
                               int64_t m, int d, int k,
                               absl::Span<const int64_t> exclude_offsets,
                               absl::Span<const int32_t> exclude_ids,
                               const TopKOptions& options) {
  TOWERPS_RETURN_IF_ERROR(ValidateRanking(n, m, k, exclude_offsets, exclude_ids, options));
  if (d < 1) return absl::InvalidArgumentError(absl::StrCat("dimension d = ", d, " < 1"));
  if ((n > 0 && queries == nullptr) || items == nullptr) {
    return absl::InvalidArgumentError("null queries or items array");
  }
  TOWERPS_RETURN_IF_ERROR(CheckFinite("queries", queries, n, d));
  TOWERPS_RETURN_IF_ERROR(CheckFinite("items", items, m, d));
  auto sgemm_tile = [&](int64_t q0, int64_t nq, int64_t i0, int64_t ni, float* out) {
    // out (nq x ni) = Q[q0 : q0 + nq] (nq x d) * V[i0 : i0 + ni]^T (d x ni).
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(nq),
                static_cast<int>(ni), d, 1.0f, queries + q0 * d, d, items + i0 * d, d, 0.0f,
                out, static_cast<int>(ni));
  };
  return RankAllItems(n, m, k, exclude_offsets, exclude_ids, options, sgemm_tile);
}

absl::StatusOr<TopK> PopularityTopK(absl::Span<const double> item_counts, int64_t n_queries,
                                    int k, absl::Span<const int64_t> exclude_offsets,
                                    absl::Span<const int32_t> exclude_ids,
                                    const TopKOptions& options) {
  const int64_t m = static_cast<int64_t>(item_counts.size());
  TOWERPS_RETURN_IF_ERROR(
      ValidateRanking(n_queries, m, k, exclude_offsets, exclude_ids, options));
  std::vector<float> popularity(m);
  for (int64_t i = 0; i < m; ++i) {
    if (!std::isfinite(item_counts[i]) || item_counts[i] < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("item_counts[", i, "] = ", item_counts[i], " is not a finite count >= 0"));
    }
    popularity[i] = static_cast<float>(std::log1p(item_counts[i]));
  }
  auto copy_tile = [&](int64_t, int64_t nq, int64_t i0, int64_t ni, float* out) {
    for (int64_t r = 0; r < nq; ++r) {
      std::memcpy(out + r * ni, popularity.data() + i0, ni * sizeof(float));
    }
  };
  return RankAllItems(n_queries, m, k, exclude_offsets, exclude_ids, options, copy_tile);
}

}  // namespace towerps::index
