// AnnIndex over its engines (ann_backend.h): options, engine choice, the SIMD
// variant picked by the CPU, exclusions and padding shared by every engine.
#include "index/ann_index.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "index/ann_backend.h"

namespace towerps::index {
namespace {

// The beam width of a search with ef_search 0 (Faiss's default efSearch).
constexpr int kDefaultEfSearch = 16;

// hnswlib and exact search compiled with AVX2+FMA when this CPU has both.
bool UseAvx2() {
  static const bool avx2 = [] {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return false;
#endif
  }();
  return avx2;
}

}  // namespace

absl::string_view AnnEngineName(AnnEngine engine) {
  switch (engine) {
    case AnnEngine::kAuto:
      return "auto";
    case AnnEngine::kFaissHnsw:
      return "faiss-hnsw";
    case AnnEngine::kHnswlib:
      return "hnswlib";
    case AnnEngine::kExact:
      return "exact";
  }
  return "unknown";
}

absl::StatusOr<AnnEngine> ParseAnnEngine(absl::string_view name) {
  for (AnnEngine e :
       {AnnEngine::kAuto, AnnEngine::kFaissHnsw, AnnEngine::kHnswlib, AnnEngine::kExact}) {
    if (name == AnnEngineName(e)) return e;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown engine '", name, "' (auto, faiss-hnsw, hnswlib or exact)"));
}

absl::Status AnnIndexOptions::Validate() const {
  if (hnsw_m < 2 || hnsw_m > 512) {
    return absl::InvalidArgumentError(absl::StrCat("hnsw_m must be in [2, 512], got ", hnsw_m));
  }
  if (ef_construction < 1) return absl::InvalidArgumentError("ef_construction must be >= 1");
  if (exact_max_items < 0) return absl::InvalidArgumentError("exact_max_items must be >= 0");
  if (!factory.empty() && engine != AnnEngine::kFaissHnsw) {
    return absl::InvalidArgumentError("a factory string needs engine faiss-hnsw");
  }
  return absl::OkStatus();
}

AnnEngine AnnIndexOptions::EngineFor(int64_t n) const {
  if (engine != AnnEngine::kAuto) return engine;
  return n <= exact_max_items ? AnnEngine::kExact : AnnEngine::kHnswlib;
}

std::string AnnIndexOptions::EffectiveFactory() const {
  switch (engine) {
    case AnnEngine::kHnswlib:
      return absl::StrCat("hnswlib M", hnsw_m);
    case AnnEngine::kExact:
      return "exact";
    default:
      return factory.empty() ? absl::StrCat("HNSW", hnsw_m, ",Flat") : factory;
  }
}

AnnIndex::AnnIndex(AnnEngine engine, std::unique_ptr<internal::AnnBackend> backend)
    : engine_(engine), backend_(std::move(backend)) {
  const std::vector<int64_t> ids = backend_->Ids();
  ids_.insert(ids.begin(), ids.end());
}
AnnIndex::~AnnIndex() = default;

int AnnIndex::dim() const { return backend_->dim(); }
int64_t AnnIndex::size() const { return backend_->size(); }

absl::StatusOr<std::unique_ptr<AnnIndex>> AnnIndex::Build(const AnnIndexOptions& options,
                                                          const float* vectors,
                                                          const int64_t* ids, int64_t n, int dim,
                                                          int omp_threads) {
  TOWERPS_RETURN_IF_ERROR(options.Validate());
  if (n < 0 || dim < 1 || (n > 0 && (vectors == nullptr || ids == nullptr))) {
    return absl::InvalidArgumentError(absl::StrCat("ann index: bad shape n=", n, " dim=", dim));
  }
  if (std::find(ids, ids + n, int64_t{-1}) != ids + n) {
    return absl::InvalidArgumentError("ann index: id -1 is reserved for padding");
  }
  const AnnEngine engine = options.EngineFor(n);
  absl::StatusOr<std::unique_ptr<internal::AnnBackend>> backend;
  switch (engine) {
    case AnnEngine::kHnswlib:
      backend = UseAvx2()
                    ? internal::simd_avx2::BuildHnswlib(options, vectors, ids, n, dim, omp_threads)
                    : internal::simd_base::BuildHnswlib(options, vectors, ids, n, dim, omp_threads);
      break;
    case AnnEngine::kExact:
      backend = UseAvx2() ? internal::simd_avx2::BuildExact(vectors, ids, n, dim)
                          : internal::simd_base::BuildExact(vectors, ids, n, dim);
      break;
    default:
      backend = internal::BuildFaiss(options, vectors, ids, n, dim, omp_threads);
  }
  TOWERPS_RETURN_IF_ERROR(backend.status());
  return std::unique_ptr<AnnIndex>(new AnnIndex(engine, std::move(*backend)));
}

absl::StatusOr<std::unique_ptr<AnnIndex>> AnnIndex::Deserialize(absl::string_view bytes,
                                                                AnnEngine engine) {
  absl::StatusOr<std::unique_ptr<internal::AnnBackend>> backend;
  switch (engine) {
    case AnnEngine::kFaissHnsw:
      backend = internal::ReadFaiss(bytes);
      break;
    case AnnEngine::kHnswlib:
      backend = UseAvx2() ? internal::simd_avx2::ReadHnswlib(bytes)
                          : internal::simd_base::ReadHnswlib(bytes);
      break;
    case AnnEngine::kExact:
      backend =
          UseAvx2() ? internal::simd_avx2::ReadExact(bytes) : internal::simd_base::ReadExact(bytes);
      break;
    default:
      return absl::InvalidArgumentError("ann index read: a concrete engine is needed");
  }
  TOWERPS_RETURN_IF_ERROR(backend.status());
  return std::unique_ptr<AnnIndex>(new AnnIndex(engine, std::move(*backend)));
}

absl::StatusOr<std::string> AnnIndex::Serialize() const { return backend_->Serialize(); }

absl::Status AnnIndex::Search(const float* query, int k, int ef_search,
                              absl::Span<const int64_t> exclude, int64_t* ids,
                              float* scores) const {
  const Query one{query, k, ef_search, exclude, ids, scores};
  return SearchBatch({&one, 1});
}

absl::Status AnnIndex::SearchBatch(absl::Span<const Query> queries) const {
  for (const Query& q : queries) {
    if (q.k < 1) return absl::InvalidArgumentError("ann search: k must be >= 1");
  }
  for (const Query& q : queries) {
    std::fill(q.ids, q.ids + q.k, int64_t{-1});
    std::fill(q.scores, q.scores + q.k, -std::numeric_limits<float>::infinity());
  }
  if (backend_->size() == 0) return absl::OkStatus();
  // Excluded ids are over-fetched and filtered here (Faiss 1.7.3's IDMap does not
  // translate id selectors): ask for k plus the excluded ids this index holds.
  const size_t n = queries.size();
  std::vector<absl::flat_hash_set<int64_t>> excluded(n);
  std::vector<internal::AnnBackend::BatchSlot> slots(n);
  std::vector<std::vector<int64_t>> got_ids(n);
  std::vector<std::vector<float>> got_scores(n);
  for (size_t i = 0; i < n; ++i) {
    const Query& q = queries[i];
    for (int64_t id : q.exclude) {
      if (ids_.contains(id)) excluded[i].insert(id);
    }
    const int64_t fetch =
        std::min<int64_t>(q.k + static_cast<int64_t>(excluded[i].size()), backend_->size());
    got_ids[i].resize(fetch);
    got_scores[i].resize(fetch);
    slots[i] = {q.query, fetch, q.ef_search > 0 ? q.ef_search : kDefaultEfSearch,
                got_ids[i].data(), got_scores[i].data(), 0};
  }
  TOWERPS_RETURN_IF_ERROR(backend_->SearchBestBatch(absl::MakeSpan(slots)));
  for (size_t i = 0; i < n; ++i) {
    int out = 0;
    for (int64_t j = 0; j < slots[i].got && out < queries[i].k; ++j) {
      if (excluded[i].contains(got_ids[i][j])) continue;
      queries[i].ids[out] = got_ids[i][j];
      queries[i].scores[out] = got_scores[i][j];
      ++out;
    }
  }
  return absl::OkStatus();
}

}  // namespace towerps::index
