// One nearest-neighbour index over inner product with 64-bit ids, on one of three
// engines (docs/index.md "Engines"): Faiss (HNSW by default, or any index factory
// string), hnswlib's HNSW (Debian libhnswlib-dev, SIMD kernels picked by the CPU at
// run time) or exact flat search. This is the project's one adapter for ANN
// libraries: every Faiss / hnswlib call is made behind it (ann_backend.h) and
// whatever they throw becomes an absl::Status.
//
// Thread-safety: Search is thread-safe after construction, with any ef_search per
// call and no lock; Build / Deserialize / Serialize are thread-compatible.
#ifndef TOWERPS_INDEX_ANN_INDEX_H_
#define TOWERPS_INDEX_ANN_INDEX_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace towerps::index {

namespace internal {
class AnnBackend;
}

// The library behind an index. kAuto (build only) picks kExact for at most
// AnnIndexOptions::exact_max_items vectors and kHnswlib above.
enum class AnnEngine { kAuto, kFaissHnsw, kHnswlib, kExact };

// "auto", "faiss-hnsw", "hnswlib", "exact" (the MANIFEST `engine` values).
absl::string_view AnnEngineName(AnnEngine engine);
// InvalidArgument for another name.
absl::StatusOr<AnnEngine> ParseAnnEngine(absl::string_view name);

struct AnnIndexOptions {
  AnnEngine engine = AnnEngine::kFaissHnsw;
  // kAuto: exact search up to this many vectors (measured: docs/index.md).
  int64_t exact_max_items = 4096;
  // HNSW graph degree (M of Faiss and hnswlib); >= 2. Faiss: used when `factory` is
  // empty.
  int hnsw_m = 32;
  // HNSW beam width while building; >= 1. Applies to any HNSW index.
  int ef_construction = 200;
  // A Faiss index factory string ("HNSW32,Flat", "IVF256,PQ16", "Flat", ...);
  // empty means "HNSW<hnsw_m>,Flat". Ids are added with an IDMap wrapper unless the
  // string already starts with "IDMap".
  std::string factory;

  absl::Status Validate() const;
  // The factory string actually used (Faiss), or a description of the other
  // engines' parameters ("hnswlib M32", "exact").
  std::string EffectiveFactory() const;
  // The engine Build uses for n vectors (kAuto resolved).
  AnnEngine EngineFor(int64_t n) const;
};

class AnnIndex {
 public:
  // Builds over n vectors: vectors: n * dim, ids: n (distinct, any int64 except
  // -1) on options.EngineFor(n). Faiss trains the index first when the factory
  // needs it (IVF, PQ). Blocks; Faiss may use OpenMP threads (omp_threads > 0 caps
  // them for the call); hnswlib adds points on max(omp_threads, 1) std::threads.
  // Errors: InvalidArgument (options, shapes, id -1), Internal (library).
  static absl::StatusOr<std::unique_ptr<AnnIndex>> Build(const AnnIndexOptions& options,
                                                         const float* vectors, const int64_t* ids,
                                                         int64_t n, int dim, int omp_threads = 0);

  // Reads an index written by Serialize for `engine` (not kAuto). DataLoss when the
  // bytes do not parse. The hnswlib and exact readers check every size, id and
  // graph link (hostile-safe); Faiss's reader is trusted only behind the CRC-32C
  // that ShardedIndex::Load checks first.
  static absl::StatusOr<std::unique_ptr<AnnIndex>> Deserialize(
      absl::string_view bytes, AnnEngine engine = AnnEngine::kFaissHnsw);

  ~AnnIndex();

  // The engine's bytes (Faiss: write_index). Errors: Internal.
  absl::StatusOr<std::string> Serialize() const;

  // The k best ids for one query (query: dim floats), best first, never one of
  // `exclude` (any order). ids/scores: k each; unused slots get id -1 and score
  // -inf. ef_search: HNSW beam width for this call (0 = the index's default: 16);
  // ignored by exact and non-HNSW Faiss indexes. Runs on the calling thread without
  // a lock. Errors: InvalidArgument for k < 1, Internal (library).
  absl::Status Search(const float* query, int k, int ef_search, absl::Span<const int64_t> exclude,
                      int64_t* ids, float* scores) const;

  // One query of SearchBatch: Search's arguments.
  struct Query {
    const float* query = nullptr;  // dim floats
    int k = 0;
    int ef_search = 0;
    absl::Span<const int64_t> exclude;
    int64_t* ids = nullptr;  // k each
    float* scores = nullptr;
  };
  // Search for every query, with exactly Search's results; the exact engine scores
  // the whole batch with sgemm. Errors: InvalidArgument (a k < 1: nothing
  // searched), Internal (library).
  absl::Status SearchBatch(absl::Span<const Query> queries) const;

  int dim() const;
  int64_t size() const;
  AnnEngine engine() const { return engine_; }

 private:
  AnnIndex(AnnEngine engine, std::unique_ptr<internal::AnnBackend> backend);
  // Constant after construction.
  AnnEngine engine_;
  std::unique_ptr<internal::AnnBackend> backend_;
  absl::flat_hash_set<int64_t> ids_;  // the ids held, to size over-fetching
};

}  // namespace towerps::index

#endif  // TOWERPS_INDEX_ANN_INDEX_H_
