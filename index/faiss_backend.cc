// The Faiss engine (ann_backend.h) and the one place Faiss is called: Faiss reports
// errors by throwing faiss::FaissException (and std::bad_alloc, std::exception from
// its IO); every call goes through Guard(), which turns them into a Status.
#include <omp.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "faiss/IndexHNSW.h"
#include "faiss/IndexIDMap.h"
#include "faiss/impl/DistanceComputer.h"
#include "faiss/impl/FaissException.h"
#include "faiss/impl/HNSW.h"
#include "faiss/impl/io.h"
#include "faiss/index_factory.h"
#include "faiss/index_io.h"
#include "faiss/utils/Heap.h"
#include "index/ann_backend.h"

namespace towerps::index::internal {
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

// Faiss's HNSW minimises distance: inner products are negated (as IndexHNSW does).
class NegatedDistance final : public faiss::DistanceComputer {
 public:
  explicit NegatedDistance(faiss::DistanceComputer* base) : base_(base) {}
  void set_query(const float* x) override { base_->set_query(x); }
  float operator()(idx_t i) override { return -(*base_)(i); }
  float symmetric_dis(idx_t i, idx_t j) override { return -base_->symmetric_dis(i, j); }

 private:
  std::unique_ptr<faiss::DistanceComputer> base_;
};

class FaissBackend final : public AnnBackend {
 public:
  explicit FaissBackend(std::unique_ptr<faiss::Index> index)
      : index_(std::move(index)),
        map_(static_cast<const faiss::IndexIDMap*>(index_.get())),
        hnsw_(dynamic_cast<const faiss::IndexHNSW*>(map_->index)) {}

  int dim() const override { return index_->d; }
  int64_t size() const override { return index_->ntotal; }
  std::vector<int64_t> Ids() const override {
    return std::vector<int64_t>(map_->id_map.begin(), map_->id_map.end());
  }

  absl::StatusOr<int64_t> SearchBest(const float* query, int64_t fetch, int ef, int64_t* ids,
                                     float* scores) const override {
    fetch = std::min<int64_t>(fetch, index_->ntotal);
    if (fetch < 1) return 0;
    std::vector<int64_t> got(fetch);
    std::vector<float> distances(fetch);
    ScopedOmpThreads omp(1);
    if (hnsw_ == nullptr) {
      // Faiss 1.7.3's IndexIDMap refuses search parameters: the inner index is
      // searched and its sequential ids translated through the id map below.
      TOWERPS_RETURN_IF_ERROR(Guard(absl::StatusCode::kInternal, "ann search", [&] {
        map_->index->search(1, query, fetch, distances.data(), got.data());
      }));
    } else {
      TOWERPS_RETURN_IF_ERROR(SearchHnsw(query, fetch, ef, &got, &distances));
    }
    int64_t out = 0;
    for (int64_t i = 0; i < fetch; ++i) {
      if (got[i] < 0) continue;  // Faiss's padding (internal ids are >= 0)
      ids[out] = map_->id_map[got[i]];
      scores[out++] = distances[i];
    }
    return out;
  }

  absl::StatusOr<std::string> Serialize() const override {
    faiss::VectorIOWriter writer;
    TOWERPS_RETURN_IF_ERROR(Guard(absl::StatusCode::kInternal, "ann index write",
                                  [&] { faiss::write_index(index_.get(), &writer); }));
    return std::string(writer.data.begin(), writer.data.end());
  }

 private:
  // IndexHNSW::search without its member efSearch: Faiss 1.7.3's HNSW::search
  // sizes its candidate queue by max(hnsw.efSearch, k) and stops by
  // SearchParametersHNSW::efSearch, so asking for k = max(fetch, ef) results with
  // params.efSearch = ef is the search IndexHNSW makes at efSearch = ef (for ef at
  // least the stored efSearch, 16 by default), without writing the member.
  absl::Status SearchHnsw(const float* query, int64_t fetch, int ef, std::vector<int64_t>* got,
                          std::vector<float>* distances) const {
    const int64_t k = std::max<int64_t>(fetch, ef);
    std::vector<int64_t> labels(k);
    std::vector<float> negated(k);
    TOWERPS_RETURN_IF_ERROR(Guard(absl::StatusCode::kInternal, "ann search", [&] {
      faiss::VisitedTable visited(hnsw_->ntotal);
      std::unique_ptr<faiss::DistanceComputer> computer(hnsw_->storage->get_distance_computer());
      if (hnsw_->metric_type == faiss::METRIC_INNER_PRODUCT) {
        computer = std::make_unique<NegatedDistance>(computer.release());
      }
      computer->set_query(query);
      faiss::SearchParametersHNSW params;
      params.efSearch = ef;
      faiss::maxheap_heapify(k, negated.data(), labels.data());
      hnsw_->hnsw.search(*computer, static_cast<int>(k), labels.data(), negated.data(), visited,
                         &params);
      faiss::maxheap_reorder(k, negated.data(), labels.data());
    }));
    const float sign = hnsw_->metric_type == faiss::METRIC_INNER_PRODUCT ? -1.0f : 1.0f;
    for (int64_t i = 0; i < fetch; ++i) {
      (*got)[i] = labels[i];
      (*distances)[i] = sign * negated[i];
    }
    return absl::OkStatus();
  }

  std::unique_ptr<faiss::Index> index_;  // an IndexIDMap
  const faiss::IndexIDMap* map_;
  const faiss::IndexHNSW* hnsw_;  // inside map_, or null for other kinds
};

}  // namespace

absl::StatusOr<std::unique_ptr<AnnBackend>> BuildFaiss(const AnnIndexOptions& options,
                                                       const float* vectors, const int64_t* ids,
                                                       int64_t n, int dim, int omp_threads) {
  const std::string factory = options.EffectiveFactory();
  ScopedOmpThreads omp(omp_threads);
  std::unique_ptr<faiss::Index> index;
  TOWERPS_RETURN_IF_ERROR(
      Guard(absl::StatusCode::kInvalidArgument, absl::StrCat("index factory '", factory, "'"), [&] {
        index.reset(faiss::index_factory(dim, factory.c_str(), faiss::METRIC_INNER_PRODUCT));
      }));
  if (dynamic_cast<faiss::IndexIDMap*>(index.get()) == nullptr) {
    auto* map = new faiss::IndexIDMap(index.release());
    map->own_fields = true;
    index.reset(map);
  }
  auto* map = static_cast<faiss::IndexIDMap*>(index.get());
  if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(map->index)) {
    hnsw->hnsw.efConstruction = options.ef_construction;
  }
  TOWERPS_RETURN_IF_ERROR(Guard(absl::StatusCode::kInternal, "ann index build", [&] {
    if (!index->is_trained) index->train(n, vectors);
    index->add_with_ids(n, vectors, ids);
  }));
  return std::unique_ptr<AnnBackend>(new FaissBackend(std::move(index)));
}

absl::StatusOr<std::unique_ptr<AnnBackend>> ReadFaiss(absl::string_view bytes) {
  faiss::VectorIOReader reader;
  reader.data.assign(bytes.begin(), bytes.end());
  std::unique_ptr<faiss::Index> index;
  TOWERPS_RETURN_IF_ERROR(Guard(absl::StatusCode::kDataLoss, "ann index read",
                                [&] { index.reset(faiss::read_index(&reader)); }));
  if (dynamic_cast<faiss::IndexIDMap*>(index.get()) == nullptr) {
    return absl::DataLossError("ann index read: not an id-mapped index");
  }
  return std::unique_ptr<AnnBackend>(new FaissBackend(std::move(index)));
}

}  // namespace towerps::index::internal
