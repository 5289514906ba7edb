// The one Faiss adapter (STYLE.md "Errors"): Faiss reports errors by throwing
// faiss::FaissException (and std::bad_alloc, std::exception from its IO); every call
// into Faiss goes through Guard(), which turns them into a Status.
#include "index/ann_index.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "faiss/IndexHNSW.h"
#include "faiss/IndexIDMap.h"
#include "faiss/impl/FaissException.h"
#include "faiss/impl/io.h"
#include "faiss/index_factory.h"
#include "faiss/index_io.h"

namespace towerps::index {
namespace {

// Runs fn(), mapping anything Faiss throws to `code` with the exception's message.
template <typename Fn>
absl::Status Guard(absl::StatusCode code, absl::string_view what, Fn&& fn) {
  try {
    fn();
    return absl::OkStatus();
  } catch (const faiss::FaissException& e) {
    return absl::Status(code, absl::StrCat(what, ": faiss: ", e.what()));
  } catch (const std::exception& e) {
    return absl::Status(code, absl::StrCat(what, ": ", e.what()));
  }
}

// The HNSW index inside `index` (through an IDMap), or null.
const faiss::IndexHNSW* FindHnsw(const faiss::Index* index) {
  if (auto* map = dynamic_cast<const faiss::IndexIDMap*>(index)) index = map->index;
  return dynamic_cast<const faiss::IndexHNSW*>(index);
}

// Caps this thread's OpenMP team size for a scope (restoring it after).
class ScopedOmpThreads {
 public:
  explicit ScopedOmpThreads(int threads) : saved_(omp_get_max_threads()) {
    if (threads > 0) omp_set_num_threads(threads);
  }
  ~ScopedOmpThreads() { omp_set_num_threads(saved_); }

 private:
  const int saved_;
};

}  // namespace

absl::Status AnnIndexOptions::Validate() const {
  if (hnsw_m < 2 || hnsw_m > 512) {
    return absl::InvalidArgumentError(absl::StrCat("hnsw_m must be in [2, 512], got ", hnsw_m));
  }
  if (ef_construction < 1) return absl::InvalidArgumentError("ef_construction must be >= 1");
  return absl::OkStatus();
}

std::string AnnIndexOptions::EffectiveFactory() const {
  return factory.empty() ? absl::StrCat("HNSW", hnsw_m, ",Flat") : factory;
}

AnnIndex::AnnIndex(std::unique_ptr<faiss::Index> index) : index_(std::move(index)) {
  const auto& id_map = static_cast<const faiss::IndexIDMap*>(index_.get())->id_map;
  ids_.insert(id_map.begin(), id_map.end());
  hnsw_ = const_cast<faiss::IndexHNSW*>(FindHnsw(index_.get()));
}
AnnIndex::~AnnIndex() = default;

int AnnIndex::dim() const { return index_->d; }
int64_t AnnIndex::size() const { return index_->ntotal; }

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
  const std::string factory = options.EffectiveFactory();
  ScopedOmpThreads omp(omp_threads);
  std::unique_ptr<faiss::Index> index;
  TOWERPS_RETURN_IF_ERROR(Guard(absl::StatusCode::kInvalidArgument,
                                absl::StrCat("index factory '", factory, "'"), [&] {
    index.reset(faiss::index_factory(dim, factory.c_str(), faiss::METRIC_INNER_PRODUCT));
  }));
  if (dynamic_cast<faiss::IndexIDMap*>(index.get()) == nullptr) {
    auto* map = new faiss::IndexIDMap(index.release());
    map->own_fields = true;
    index.reset(map);
  }
  if (auto* hnsw = const_cast<faiss::IndexHNSW*>(FindHnsw(index.get()))) {
    hnsw->hnsw.efConstruction = options.ef_construction;
  }
  TOWERPS_RETURN_IF_ERROR(Guard(absl::StatusCode::kInternal, "ann index build", [&] {
    if (!index->is_trained) index->train(n, vectors);
    index->add_with_ids(n, vectors, ids);
  }));
  return std::unique_ptr<AnnIndex>(new AnnIndex(std::move(index)));
}

absl::StatusOr<std::unique_ptr<AnnIndex>> AnnIndex::Deserialize(absl::string_view bytes) {
  faiss::VectorIOReader reader;
  reader.data.assign(bytes.begin(), bytes.end());
  std::unique_ptr<faiss::Index> index;
  TOWERPS_RETURN_IF_ERROR(Guard(absl::StatusCode::kDataLoss, "ann index read",
                                [&] { index.reset(faiss::read_index(&reader)); }));
  if (dynamic_cast<faiss::IndexIDMap*>(index.get()) == nullptr) {
    return absl::DataLossError("ann index read: not an id-mapped index");
  }
  return std::unique_ptr<AnnIndex>(new AnnIndex(std::move(index)));
}

absl::StatusOr<std::string> AnnIndex::Serialize() const {
  faiss::VectorIOWriter writer;
  TOWERPS_RETURN_IF_ERROR(Guard(absl::StatusCode::kInternal, "ann index write",
                                [&] { faiss::write_index(index_.get(), &writer); }));
  return std::string(writer.data.begin(), writer.data.end());
}

absl::Status AnnIndex::Search(const float* query, int k, int ef_search,
                              absl::Span<const int64_t> exclude, int64_t* ids,
                              float* scores) const {
  if (k < 1) return absl::InvalidArgumentError("ann search: k must be >= 1");
  std::fill(ids, ids + k, int64_t{-1});
  std::fill(scores, scores + k, -std::numeric_limits<float>::infinity());
  if (index_->ntotal == 0) return absl::OkStatus();
  // Faiss 1.7.3's IDMap does not translate id selectors (nor accept search
  // parameters), so excluded ids are over-fetched and filtered here: ask for k plus
  // the excluded ids this index holds.
  absl::flat_hash_set<int64_t> excluded;
  for (int64_t id : exclude) {
    if (ids_.contains(id)) excluded.insert(id);
  }
  const int64_t held = static_cast<int64_t>(excluded.size());
  const int64_t fetch = std::min<int64_t>(k + held, index_->ntotal);
  std::vector<int64_t> got_ids(fetch);
  std::vector<float> got_scores(fetch);
  ScopedOmpThreads omp(1);
  // Faiss 1.7.3's IndexIDMap refuses search parameters, so the inner index is
  // searched and its sequential ids translated through the id map here.
  const auto* map = static_cast<const faiss::IndexIDMap*>(index_.get());
  auto search = [&] {
    return Guard(absl::StatusCode::kInternal, "ann search", [&] {
      map->index->search(1, query, fetch, got_scores.data(), got_ids.data());
    });
  };
  if (hnsw_ == nullptr) {
    TOWERPS_RETURN_IF_ERROR(search());
  } else {
    bool done = false;
    {
      absl::ReaderMutexLock shared(&ef_mu_);
      if (ef_search <= 0 || hnsw_->hnsw.efSearch == ef_search) {
        TOWERPS_RETURN_IF_ERROR(search());
        done = true;
      }
    }
    if (!done) {
      absl::MutexLock exclusive(&ef_mu_);
      hnsw_->hnsw.efSearch = ef_search;
      TOWERPS_RETURN_IF_ERROR(search());
    }
  }
  int out = 0;
  for (int64_t i = 0; i < fetch && out < k; ++i) {
    if (got_ids[i] < 0) continue;  // Faiss's padding (internal ids are >= 0)
    const int64_t id = map->id_map[got_ids[i]];  // any int64 but -1, negatives too
    if (excluded.contains(id)) continue;
    ids[out] = id;
    scores[out] = got_scores[i];
    ++out;
  }
  return absl::OkStatus();
}

}  // namespace towerps::index
