// Internal to index/: the engines behind AnnIndex (ann_index.h). Each engine is one
// AnnBackend; AnnIndex adds the shared parts (exclusions, padding, id set).
//   faiss_backend.cc  - Faiss (HNSW or any factory string); the one Faiss caller.
//   simd_engines*.cc  - hnswlib HNSW and exact flat search over hnswlib's SIMD
//                       inner-product kernels, compiled twice (baseline x86-64 and
//                       AVX2+FMA) and picked at run time by the CPU (ann_index.cc).
// Thread-safety: SearchBest is thread-safe (no shared mutable state but pools that
// lock); the rest is thread-compatible.
#ifndef TOWERPS_INDEX_ANN_BACKEND_H_
#define TOWERPS_INDEX_ANN_BACKEND_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/status.h"
#include "index/ann_index.h"

namespace towerps::index::internal {

class AnnBackend {
 public:
  virtual ~AnnBackend() = default;
  virtual int dim() const = 0;
  virtual int64_t size() const = 0;
  // The ids held (any order).
  virtual std::vector<int64_t> Ids() const = 0;
  // The `fetch` best (id, inner product) for `query`, best first, with beam width
  // ef (> 0; engines without a beam ignore it). Returns how many were written
  // (<= fetch). Errors: Internal.
  virtual absl::StatusOr<int64_t> SearchBest(const float* query, int64_t fetch, int ef,
                                             int64_t* ids, float* scores) const = 0;
  // SearchBest for several queries: slot i gets what SearchBest(slots[i].query,
  // .fetch, .ef, .ids, .scores) writes, its count in .got. The default searches one
  // query after another; the exact engine scores the batch with sgemm (blocks of
  // rows) and rescores its candidates with SearchBest's kernel: the same results.
  struct BatchSlot {
    const float* query = nullptr;
    int64_t fetch = 0;
    int ef = 0;
    int64_t* ids = nullptr;
    float* scores = nullptr;
    int64_t got = 0;
  };
  virtual absl::Status SearchBestBatch(absl::Span<BatchSlot> slots) const {
    for (BatchSlot& slot : slots) {
      TOWERPS_ASSIGN_OR_RETURN(slot.got,
                               SearchBest(slot.query, slot.fetch, slot.ef, slot.ids, slot.scores));
    }
    return absl::OkStatus();
  }
  virtual absl::StatusOr<std::string> Serialize() const = 0;
};

// faiss_backend.cc. Arguments as AnnIndex::Build / Deserialize.
absl::StatusOr<std::unique_ptr<AnnBackend>> BuildFaiss(const AnnIndexOptions& options,
                                                       const float* vectors, const int64_t* ids,
                                                       int64_t n, int dim, int omp_threads);
absl::StatusOr<std::unique_ptr<AnnBackend>> ReadFaiss(absl::string_view bytes);

// simd_engines_impl.h, one set per instruction set. threads: std::threads adding
// points (hnswlib), >= 1. Read* verify the whole structure (hostile-safe: DataLoss).
#define TOWERPS_DECLARE_SIMD_ENGINES(ns)                                                           \
  namespace ns {                                                                                   \
  absl::StatusOr<std::unique_ptr<AnnBackend>> BuildHnswlib(const AnnIndexOptions& options,         \
                                                           const float* vectors,                   \
                                                           const int64_t* ids, int64_t n, int dim, \
                                                           int threads);                           \
  absl::StatusOr<std::unique_ptr<AnnBackend>> ReadHnswlib(absl::string_view bytes);                \
  absl::StatusOr<std::unique_ptr<AnnBackend>> BuildExact(const float* vectors, const int64_t* ids, \
                                                         int64_t n, int dim);                      \
  absl::StatusOr<std::unique_ptr<AnnBackend>> ReadExact(absl::string_view bytes);                  \
  }
TOWERPS_DECLARE_SIMD_ENGINES(simd_base)
TOWERPS_DECLARE_SIMD_ENGINES(simd_avx2)
#undef TOWERPS_DECLARE_SIMD_ENGINES

}  // namespace towerps::index::internal

#endif  // TOWERPS_INDEX_ANN_BACKEND_H_
