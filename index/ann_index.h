// One approximate nearest-neighbour index over inner product: a Faiss index (HNSW
// by default, or any index factory string) with 64-bit ids. This is the project's
// one Faiss adapter: every Faiss call is made here and faiss::FaissException (or
// any std::exception Faiss throws) becomes an absl::Status.
//
// Thread-safety: Search is thread-safe after construction (Faiss searches are
// const); Build / Deserialize / Serialize are thread-compatible.
#ifndef TOWERPS_INDEX_ANN_INDEX_H_
#define TOWERPS_INDEX_ANN_INDEX_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace faiss {
struct Index;
struct IndexHNSW;
}

namespace towerps::index {

struct AnnIndexOptions {
  // HNSW graph degree (Faiss's M); >= 2. Used when `factory` is empty.
  int hnsw_m = 32;
  // HNSW beam width while building; >= 1. Applies to any HNSW index.
  int ef_construction = 200;
  // A Faiss index factory string ("HNSW32,Flat", "IVF256,PQ16", "Flat", ...);
  // empty means "HNSW<hnsw_m>,Flat". Ids are added with an IDMap wrapper unless the
  // string already starts with "IDMap".
  std::string factory;

  absl::Status Validate() const;
  // The factory string actually used.
  std::string EffectiveFactory() const;
};

class AnnIndex {
 public:
  // Builds over n vectors: vectors: n * dim, ids: n (any int64 except -1). Trains
  // the index first when the factory needs it (IVF, PQ). Blocks; Faiss may use
  // OpenMP threads (omp_threads > 0 caps them for the call).
  // Errors: InvalidArgument (options, shapes, id -1), Internal (Faiss).
  static absl::StatusOr<std::unique_ptr<AnnIndex>> Build(const AnnIndexOptions& options,
                                                         const float* vectors, const int64_t* ids,
                                                         int64_t n, int dim, int omp_threads = 0);

  // Reads an index written by Serialize (Faiss's own format). DataLoss when Faiss
  // cannot parse it.
  static absl::StatusOr<std::unique_ptr<AnnIndex>> Deserialize(absl::string_view bytes);

  ~AnnIndex();

  // Faiss's write_index bytes. Errors: Internal.
  absl::StatusOr<std::string> Serialize() const;

  // The k best ids for one query (query: dim floats), best first, never one of
  // `exclude` (any order). ids/scores: k each; unused slots get id -1 and score
  // -inf. ef_search: HNSW beam width for this call (0 = the current one); ignored
  // by non-HNSW indexes. Runs on the calling thread; concurrent searches with
  // different ef_search values take turns (see ef_mu_). Errors: InvalidArgument for
  // k < 1, Internal (Faiss).
  absl::Status Search(const float* query, int k, int ef_search, absl::Span<const int64_t> exclude,
                      int64_t* ids, float* scores) const;

  int dim() const;
  int64_t size() const;

 private:
  explicit AnnIndex(std::unique_ptr<faiss::Index> index);
  // Constant after construction.
  std::unique_ptr<faiss::Index> index_;
  absl::flat_hash_set<int64_t> ids_;  // the ids held, to size over-fetching
  faiss::IndexHNSW* hnsw_ = nullptr;  // inside index_, or null for other kinds

  // Faiss 1.7.3's HNSW ignores SearchParametersHNSW::efSearch and reads its member
  // hnsw.efSearch, so the member is the per-request knob: searches with the
  // current value share ef_mu_; a search with another value takes it exclusively
  // and changes it.
  mutable absl::Mutex ef_mu_;
};

}  // namespace towerps::index

#endif  // TOWERPS_INDEX_ANN_INDEX_H_
