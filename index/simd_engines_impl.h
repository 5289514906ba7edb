// hnswlib's HNSW and exact flat search, both over hnswlib's inner-product kernels
// (Debian libhnswlib-dev 0.6.2, header-only). hnswlib picks its kernels at compile
// time from __SSE__ / __AVX__, so this file is compiled twice: simd_engines_base.cc
// (baseline x86-64) and simd_engines_avx2.cc (TOWERPS_SIMD_AVX2), each
// with its own TOWERPS_SIMD_NS. hnswlib's namespace and its global helper functions
// are renamed per copy so the two never share a symbol. The AVX2 copy is not built
// with -mavx2: the standard and absl templates both copies instantiate (vectors,
// hash tables) are weak symbols the linker keeps once, and an AVX2 one could then
// run on any CPU. Instead every library header is included first, then
// `#pragma GCC target` turns AVX2+FMA on for hnswlib and this file's own functions
// only, and USE_AVX selects hnswlib's AVX kernels. Under clang (fuzz builds) the pragma is
// skipped and both copies use the baseline kernels.
//
// File formats (little-endian; both refused whole on any inconsistency):
//   hnswlib: "TPHNSW01" u32 dim, u32 M, u32 ef_construction, u64 n, i32 max_level,
//            u32 entry_point, then per element: i64 id, dim f32, u32 level, and for
//            each layer 0..level: u32 count, count u32 neighbours (< n).
//   exact:   "TPFLAT01" u32 dim, u64 n, n i64 ids, n * dim f32.
#ifndef TOWERPS_SIMD_NS
#error "define TOWERPS_SIMD_NS before including simd_engines_impl.h"
#endif

// Everything hnswlib includes, before any target pragma.
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cstring>
#include <deque>
#include <fstream>
#include <iostream>
#include <list>
#include <mutex>
#include <queue>
#include <random>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#include <x86intrin.h>
#endif

#include <cblas.h>

#include <cmath>
#include <functional>
#include <limits>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "index/ann_backend.h"

#if defined(TOWERPS_SIMD_AVX2) && defined(__GNUC__) && !defined(__clang__)
#define TOWERPS_SIMD_PRAGMA 1
#pragma GCC push_options
#pragma GCC target("avx2,fma")
// g++ does not define __AVX__ after the pragma; USE_AVX is hnswlib's own switch.
#define USE_AVX
#endif

#define TOWERPS_SIMD_CAT2(a, b) a##_##b
#define TOWERPS_SIMD_CAT(a, b) TOWERPS_SIMD_CAT2(a, b)
#define hnswlib TOWERPS_SIMD_CAT(towerps_hnswlib, TOWERPS_SIMD_NS)
#define cpuid TOWERPS_SIMD_CAT(towerps_hnswlib_cpuid, TOWERPS_SIMD_NS)
#define xgetbv TOWERPS_SIMD_CAT(towerps_hnswlib_xgetbv, TOWERPS_SIMD_NS)
#define AVXCapable TOWERPS_SIMD_CAT(towerps_hnswlib_avx, TOWERPS_SIMD_NS)
#define AVX512Capable TOWERPS_SIMD_CAT(towerps_hnswlib_avx512, TOWERPS_SIMD_NS)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-variable"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wtype-limits"
// hnswlib's construction search prefetches the link after a full upper-layer list
// (hnswalg.h, searchBaseLayer: `*(datal + j + 1)`), reading up to 4 bytes past the
// block it allocated for that list. Every block hnswlib allocates is given
// kHnswAllocSlack bytes more: unqualified lookup inside its (renamed) namespace finds
// these before ::malloc and ::realloc. The loader below allocates its lists the same way.
namespace hnswlib {
constexpr size_t kHnswAllocSlack = 16;
inline void* malloc(size_t bytes) { return std::malloc(bytes + kHnswAllocSlack); }
inline void* realloc(void* block, size_t bytes) {
  return std::realloc(block, bytes + kHnswAllocSlack);
}
}  // namespace hnswlib
#include "hnswlib/hnswlib.h"
#pragma GCC diagnostic pop
#undef cpuid
#undef xgetbv
#undef AVXCapable
#undef AVX512Capable

namespace towerps::index::internal::TOWERPS_SIMD_NS {
namespace {

using Hnsw = hnswlib::HierarchicalNSW<float>;
using hnswlib::tableint;

constexpr char kHnswMagic[8] = {'T', 'P', 'H', 'N', 'S', 'W', '0', '1'};
constexpr char kFlatMagic[8] = {'T', 'P', 'F', 'L', 'A', 'T', '0', '1'};
constexpr int kMaxDim = 1 << 16;
constexpr int kMaxLevel = 64;

// hnswlib's InnerProductSpace sets file-level kernel pointers in its constructor:
// the first one is made under a once flag so later ones only rewrite equal values.
std::unique_ptr<hnswlib::InnerProductSpace> MakeSpace(int dim) {
  static std::once_flag once;
  std::call_once(once, [] { hnswlib::InnerProductSpace warm(16); });
  return std::make_unique<hnswlib::InnerProductSpace>(dim);
}

template <typename T>
void Put(std::string* out, T value) {
  out->append(reinterpret_cast<const char*>(&value), sizeof(T));
}

// Reads fixed-size values from a byte buffer; any read past the end fails.
class Reader {
 public:
  explicit Reader(absl::string_view bytes) : bytes_(bytes) {}
  template <typename T>
  bool Get(T* value) {
    return GetBytes(value, sizeof(T));
  }
  bool GetBytes(void* out, size_t n) {
    if (bytes_.size() - pos_ < n) return false;
    std::memcpy(out, bytes_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  size_t remaining() const { return bytes_.size() - pos_; }

 private:
  absl::string_view bytes_;
  size_t pos_ = 0;
};

// Keeps the `fetch` best (lowest hnswlib distance = highest inner product) and
// writes them best first with score = 1 - distance.
int64_t WriteBest(std::priority_queue<std::pair<float, int64_t>>& worst_first, int64_t* ids,
                  float* scores) {
  const int64_t n = static_cast<int64_t>(worst_first.size());
  for (int64_t i = n - 1; i >= 0; --i) {
    ids[i] = worst_first.top().second;
    scores[i] = 1.0f - worst_first.top().first;
    worst_first.pop();
  }
  return n;
}

class HnswlibBackend final : public AnnBackend {
 public:
  HnswlibBackend(int dim, int m, int ef_construction, int64_t capacity)
      : dim_(dim),
        m_(m),
        space_(MakeSpace(dim)),
        hnsw_(std::make_unique<Hnsw>(space_.get(), std::max<int64_t>(capacity, 1), m,
                                     ef_construction)) {}

  int dim() const override { return dim_; }
  int64_t size() const override { return static_cast<int64_t>(hnsw_->cur_element_count); }
  std::vector<int64_t> Ids() const override {
    std::vector<int64_t> ids(size());
    for (int64_t i = 0; i < size(); ++i) ids[i] = Label(i);
    return ids;
  }

  // hnswlib's searchKnn with the beam width as an argument instead of its member
  // ef_ (which would need a lock): greedy descent of the upper layers, then its
  // const searchBaseLayerST on layer 0.
  absl::StatusOr<int64_t> SearchBest(const float* query, int64_t fetch, int ef, int64_t* ids,
                                     float* scores) const override {
    const Hnsw& h = *hnsw_;
    if (h.cur_element_count == 0 || fetch < 1) return 0;
    tableint current = h.enterpoint_node_;
    float best = h.fstdistfunc_(query, h.getDataByInternalId(current), h.dist_func_param_);
    for (int level = h.maxlevel_; level > 0; --level) {
      for (bool changed = true; changed;) {
        changed = false;
        unsigned int* list = h.get_linklist(current, level);
        const int count = h.getListCount(list);
        const tableint* next = reinterpret_cast<const tableint*>(list + 1);
        for (int i = 0; i < count; ++i) {
          const float d = h.fstdistfunc_(query, h.getDataByInternalId(next[i]), h.dist_func_param_);
          if (d < best) {
            best = d;
            current = next[i];
            changed = true;
          }
        }
      }
    }
    auto top = h.searchBaseLayerST<false>(current, query,
                                          std::max<size_t>(static_cast<size_t>(ef), fetch));
    std::priority_queue<std::pair<float, int64_t>> worst_first;
    while (static_cast<int64_t>(top.size()) > fetch) top.pop();
    for (; !top.empty(); top.pop()) worst_first.emplace(top.top().first, Label(top.top().second));
    return WriteBest(worst_first, ids, scores);
  }

  absl::StatusOr<std::string> Serialize() const override {
    const Hnsw& h = *hnsw_;
    std::string out(kHnswMagic, sizeof(kHnswMagic));
    Put<uint32_t>(&out, dim_);
    Put<uint32_t>(&out, m_);
    Put<uint32_t>(&out, static_cast<uint32_t>(h.ef_construction_));
    Put<uint64_t>(&out, h.cur_element_count);
    Put<int32_t>(&out, h.cur_element_count == 0 ? 0 : h.maxlevel_);
    Put<uint32_t>(&out, h.cur_element_count == 0 ? 0 : h.enterpoint_node_);
    for (size_t i = 0; i < h.cur_element_count; ++i) {
      Put<int64_t>(&out, Label(i));
      out.append(h.getDataByInternalId(i), dim_ * sizeof(float));
      const int level = h.element_levels_[i];
      Put<uint32_t>(&out, level);
      for (int l = 0; l <= level; ++l) {
        unsigned int* list = h.get_linklist_at_level(i, l);
        const int count = h.getListCount(list);
        Put<uint32_t>(&out, count);
        out.append(reinterpret_cast<const char*>(list + 1), count * sizeof(tableint));
      }
    }
    return out;
  }

  static absl::StatusOr<std::unique_ptr<AnnBackend>> Build(const AnnIndexOptions& options,
                                                           const float* vectors, const int64_t* ids,
                                                           int64_t n, int dim, int threads) {
    if (n >= (int64_t{1} << 31) || dim > kMaxDim) {
      return absl::InvalidArgumentError("hnswlib: too many vectors or dimensions");
    }
    std::unique_ptr<HnswlibBackend> backend;
    try {
      backend = std::make_unique<HnswlibBackend>(dim, options.hnsw_m, options.ef_construction, n);
      Hnsw& h = *backend->hnsw_;
      if (n > 0) h.addPoint(vectors, static_cast<hnswlib::labeltype>(ids[0]));
      std::atomic<int64_t> next{1};
      std::atomic<bool> failed{false};
      std::string error;
      std::mutex error_mu;
      auto add = [&] {
        try {
          for (int64_t i = next++; i < n && !failed; i = next++) {
            h.addPoint(vectors + i * dim, static_cast<hnswlib::labeltype>(ids[i]));
          }
        } catch (const std::exception& e) {
          std::lock_guard<std::mutex> lock(error_mu);
          failed = true;
          error = e.what();
        }
      };
      std::vector<std::thread> pool;
      for (int t = 1; t < threads; ++t) pool.emplace_back(add);
      add();
      for (auto& thread : pool) thread.join();
      if (failed) return absl::InternalError(absl::StrCat("hnswlib build: ", error));
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat("hnswlib build: ", e.what()));
    }
    return std::unique_ptr<AnnBackend>(std::move(backend));
  }

  static absl::StatusOr<std::unique_ptr<AnnBackend>> Read(absl::string_view bytes) {
    auto bad = [](absl::string_view why) {
      return absl::DataLossError(absl::StrCat("hnswlib index read: ", why));
    };
    Reader in(bytes);
    char magic[sizeof(kHnswMagic)];
    uint32_t dim, m, ef_construction, entry;
    uint64_t n;
    int32_t max_level;
    if (!in.GetBytes(magic, sizeof(magic)) || std::memcmp(magic, kHnswMagic, sizeof(magic)) != 0) {
      return bad("not a towerps hnswlib file");
    }
    if (!in.Get(&dim) || !in.Get(&m) || !in.Get(&ef_construction) || !in.Get(&n) ||
        !in.Get(&max_level) || !in.Get(&entry)) {
      return bad("truncated header");
    }
    if (dim < 1 || dim > kMaxDim || m < 2 || m > 512 || ef_construction < 1 ||
        ef_construction > (1u << 20) || max_level < 0 || max_level > kMaxLevel) {
      return bad("header out of range");
    }
    // Every element takes at least its id, vector, level and layer-0 count.
    const uint64_t min_element = 8 + 4 * uint64_t{dim} + 8;
    if (n >= (uint64_t{1} << 31) || n > in.remaining() / min_element || (n > 0 && entry >= n)) {
      return bad("element count or entry point out of range");
    }
    // Memory per element (layer-0 links at full degree) is bounded by what the file
    // could describe, so a short hostile file cannot ask for gigabytes.
    const uint64_t memory = n * (4 + 8 * uint64_t{m} + 4 * uint64_t{dim} + 8);
    if (memory > 256 * uint64_t{bytes.size()} + (uint64_t{1} << 20)) {
      return bad("element count too large for the file");
    }
    std::unique_ptr<HnswlibBackend> backend;
    try {
      backend = std::make_unique<HnswlibBackend>(dim, m, ef_construction, n);
    } catch (const std::exception& e) {
      return bad(e.what());
    }
    Hnsw& h = *backend->hnsw_;
    absl::flat_hash_set<int64_t> labels;
    std::vector<tableint> links;
    for (uint64_t i = 0; i < n; ++i) {
      int64_t label;
      uint32_t level;
      if (!in.Get(&label) || !in.GetBytes(h.getDataByInternalId(i), dim * sizeof(float)) ||
          !in.Get(&level)) {
        return bad(absl::StrCat("truncated at element ", i));
      }
      if (level > static_cast<uint32_t>(max_level) || !labels.insert(label).second) {
        return bad(absl::StrCat("element ", i, ": level above the top or duplicate id"));
      }
      std::memset(h.data_level0_memory_ + i * h.size_data_per_element_, 0, h.size_links_level0_);
      h.setExternalLabel(i, static_cast<hnswlib::labeltype>(label));
      h.element_levels_[i] = level;
      h.linkLists_[i] = nullptr;
      // Counted now so the destructor frees the layers allocated so far.
      h.cur_element_count = i + 1;
      if (level > 0) {
        h.linkLists_[i] = static_cast<char*>(
            std::calloc(1, level * h.size_links_per_element_ + hnswlib::kHnswAllocSlack));
        if (h.linkLists_[i] == nullptr) return bad("out of memory");
      }
      for (uint32_t l = 0; l <= level; ++l) {
        uint32_t count;
        const size_t cap = l == 0 ? h.maxM0_ : h.maxM_;
        if (!in.Get(&count) || count > cap) return bad(absl::StrCat("element ", i, ": bad degree"));
        unsigned int* list = h.get_linklist_at_level(i, l);
        *list = count;
        tableint* next = reinterpret_cast<tableint*>(list + 1);
        if (!in.GetBytes(next, count * sizeof(tableint))) return bad("truncated links");
        for (uint32_t j = 0; j < count; ++j) {
          if (next[j] >= n) return bad(absl::StrCat("element ", i, ": neighbour out of range"));
        }
      }
    }
    if (in.remaining() != 0) return bad("trailing bytes");
    if (n > 0) {
      // Upper layers are read only for elements whose level reaches them.
      for (uint64_t i = 0; i < n; ++i) {
        for (int l = 1; l <= h.element_levels_[i]; ++l) {
          unsigned int* list = h.get_linklist(i, l);
          const tableint* next = reinterpret_cast<const tableint*>(list + 1);
          for (int j = 0; j < h.getListCount(list); ++j) {
            if (h.element_levels_[next[j]] < l) return bad("link to a layer the node lacks");
          }
        }
      }
      if (h.element_levels_[entry] != max_level) return bad("entry point not on the top layer");
      h.maxlevel_ = max_level;
      h.enterpoint_node_ = entry;
    }
    for (uint64_t i = 0; i < n; ++i) h.label_lookup_[h.getExternalLabel(i)] = i;
    return std::unique_ptr<AnnBackend>(std::move(backend));
  }

 private:
  int64_t Label(size_t internal) const {
    return static_cast<int64_t>(hnsw_->getExternalLabel(internal));
  }

  const int dim_;
  const int m_;
  std::unique_ptr<hnswlib::InnerProductSpace> space_;  // outlives hnsw_
  std::unique_ptr<Hnsw> hnsw_;
};

// Every vector scored with hnswlib's inner-product kernel, best `fetch` kept.
class ExactBackend final : public AnnBackend {
 public:
  ExactBackend(int dim, std::vector<int64_t> ids, std::vector<float> vectors)
      : dim_(dim),
        ids_(std::move(ids)),
        vectors_(std::move(vectors)),
        max_norm_(MaxNorm(vectors_, dim)),
        space_(MakeSpace(dim)) {}

  int dim() const override { return dim_; }
  int64_t size() const override { return static_cast<int64_t>(ids_.size()); }
  std::vector<int64_t> Ids() const override { return ids_; }

  absl::StatusOr<int64_t> SearchBest(const float* query, int64_t fetch, int /*ef*/, int64_t* ids,
                                     float* scores) const override {
    auto distance = space_->get_dist_func();
    void* param = space_->get_dist_func_param();
    std::priority_queue<std::pair<float, int64_t>> worst_first;  // (distance, row)
    const int64_t n = size();
    for (int64_t row = 0; row < n; ++row) {
      const float d = distance(query, vectors_.data() + row * dim_, param);
      if (static_cast<int64_t>(worst_first.size()) < fetch) {
        worst_first.emplace(d, row);
      } else if (d < worst_first.top().first) {
        worst_first.pop();
        worst_first.emplace(d, row);
      }
    }
    const int64_t got = WriteBest(worst_first, ids, scores);
    for (int64_t i = 0; i < got; ++i) ids[i] = ids_[ids[i]];
    return got;
  }

  // SearchBest's results for every slot. The batch is scored with one sgemm per
  // block of rows; a row is a candidate while its sgemm score is within 2 * bound of
  // the query's fetch-th best sgemm score so far, where bound covers the rounding of
  // both sgemm and the kernel (|error| <= ~dim * 2^-24 * |q| * |x| for any summation
  // order). Every row of SearchBest's answer is then a candidate; the candidates are
  // rescored with SearchBest's kernel and ranked by its rule (distance, then row).
  absl::Status SearchBestBatch(absl::Span<BatchSlot> slots) const override {
    const int nq = static_cast<int>(slots.size());
    const int64_t n = size();
    if (nq <= 1 || n == 0) return AnnBackend::SearchBestBatch(slots);
    auto distance = space_->get_dist_func();
    void* param = space_->get_dist_func_param();
    std::vector<float> queries(static_cast<size_t>(nq) * dim_);
    struct Pending {
      std::vector<float> best;  // min-heap: the `fetch` best sgemm scores so far
      std::vector<std::pair<float, int64_t>> candidates;  // (sgemm score, row)
      float slack = 0;
      float Threshold(int64_t fetch) const {
        return static_cast<int64_t>(best.size()) < fetch ? -std::numeric_limits<float>::infinity()
                                                         : best.front() - slack;
      }
    };
    std::vector<Pending> pending(nq);
    for (int q = 0; q < nq; ++q) {
      std::memcpy(queries.data() + static_cast<size_t>(q) * dim_, slots[q].query,
                  dim_ * sizeof(float));
      float norm = 0;
      for (int c = 0; c < dim_; ++c) norm += slots[q].query[c] * slots[q].query[c];
      const float unit = std::ldexp(1.0f, -24);
      pending[q].slack =
          4 * ((dim_ + 4) * unit * std::sqrt(norm) * max_norm_ + unit * 4) + 1e-30f;
    }
    constexpr int64_t kBlock = 1024;
    std::vector<float> block(static_cast<size_t>(nq) * kBlock);
    for (int64_t r0 = 0; r0 < n; r0 += kBlock) {
      const int rows = static_cast<int>(std::min(kBlock, n - r0));
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, rows, dim_, 1.0f, queries.data(),
                  dim_, vectors_.data() + r0 * dim_, dim_, 0.0f, block.data(), rows);
      for (int q = 0; q < nq; ++q) {
        const int64_t fetch = slots[q].fetch;
        if (fetch < 1) continue;
        Pending& p = pending[q];
        const float* score = block.data() + static_cast<size_t>(q) * rows;
        for (int j = 0; j < rows; ++j) {
          const float v = score[j];
          if (static_cast<int64_t>(p.best.size()) < fetch) {
            p.best.push_back(v);
            std::push_heap(p.best.begin(), p.best.end(), std::greater<float>());
          } else if (v > p.best.front()) {
            std::pop_heap(p.best.begin(), p.best.end(), std::greater<float>());
            p.best.back() = v;
            std::push_heap(p.best.begin(), p.best.end(), std::greater<float>());
          }
          if (v >= p.Threshold(fetch)) p.candidates.emplace_back(v, r0 + j);
        }
        if (static_cast<int64_t>(p.candidates.size()) > 2 * fetch + kBlock) Prune(p, fetch);
      }
    }
    for (int q = 0; q < nq; ++q) {
      BatchSlot& slot = slots[q];
      slot.got = 0;
      if (slot.fetch < 1) continue;
      Prune(pending[q], slot.fetch);
      std::vector<std::pair<float, int64_t>> ranked;  // (kernel distance, row)
      for (const auto& [unused, row] : pending[q].candidates) {
        ranked.emplace_back(distance(slot.query, vectors_.data() + row * dim_, param), row);
      }
      const int64_t keep = std::min<int64_t>(slot.fetch, static_cast<int64_t>(ranked.size()));
      std::partial_sort(ranked.begin(), ranked.begin() + keep, ranked.end());
      std::priority_queue<std::pair<float, int64_t>> worst_first(ranked.begin(),
                                                                 ranked.begin() + keep);
      slot.got = WriteBest(worst_first, slot.ids, slot.scores);
      for (int64_t i = 0; i < slot.got; ++i) slot.ids[i] = ids_[slot.ids[i]];
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> Serialize() const override {
    std::string out(kFlatMagic, sizeof(kFlatMagic));
    Put<uint32_t>(&out, dim_);
    Put<uint64_t>(&out, ids_.size());
    out.append(reinterpret_cast<const char*>(ids_.data()), ids_.size() * sizeof(int64_t));
    out.append(reinterpret_cast<const char*>(vectors_.data()), vectors_.size() * sizeof(float));
    return out;
  }

  static absl::StatusOr<std::unique_ptr<AnnBackend>> Read(absl::string_view bytes) {
    Reader in(bytes);
    char magic[sizeof(kFlatMagic)];
    uint32_t dim;
    uint64_t n;
    if (!in.GetBytes(magic, sizeof(magic)) || std::memcmp(magic, kFlatMagic, sizeof(magic)) != 0 ||
        !in.Get(&dim) || !in.Get(&n)) {
      return absl::DataLossError("exact index read: not a towerps flat file");
    }
    if (dim < 1 || dim > kMaxDim || n > in.remaining() / (8 + 4 * uint64_t{dim}) ||
        in.remaining() != n * (8 + 4 * uint64_t{dim})) {
      return absl::DataLossError("exact index read: size does not match its header");
    }
    std::vector<int64_t> ids(n);
    std::vector<float> vectors(n * dim);
    in.GetBytes(ids.data(), n * sizeof(int64_t));
    in.GetBytes(vectors.data(), vectors.size() * sizeof(float));
    if (absl::flat_hash_set<int64_t>(ids.begin(), ids.end()).size() != n) {
      return absl::DataLossError("exact index read: duplicate ids");
    }
    return std::unique_ptr<AnnBackend>(new ExactBackend(dim, std::move(ids), std::move(vectors)));
  }

 private:
  const int dim_;
  const std::vector<int64_t> ids_;
  const std::vector<float> vectors_;  // ids_.size() * dim_
  const float max_norm_;                // largest row norm (the batch's error bound)
  std::unique_ptr<hnswlib::InnerProductSpace> space_;

  template <typename Pending>
  static void Prune(Pending& p, int64_t fetch) {
    const float threshold = p.Threshold(fetch);
    std::erase_if(p.candidates, [threshold](const auto& c) { return c.first < threshold; });
  }
  static float MaxNorm(const std::vector<float>& vectors, int dim) {
    float most = 0;
    for (size_t r = 0; r + dim <= vectors.size(); r += dim) {
      float norm = 0;
      for (int c = 0; c < dim; ++c) norm += vectors[r + c] * vectors[r + c];
      most = std::max(most, norm);
    }
    return std::sqrt(most) * 1.001f;
  }
};

}  // namespace

absl::StatusOr<std::unique_ptr<AnnBackend>> BuildHnswlib(const AnnIndexOptions& options,
                                                         const float* vectors, const int64_t* ids,
                                                         int64_t n, int dim, int threads) {
  return HnswlibBackend::Build(options, vectors, ids, n, dim, std::max(threads, 1));
}

absl::StatusOr<std::unique_ptr<AnnBackend>> ReadHnswlib(absl::string_view bytes) {
  return HnswlibBackend::Read(bytes);
}

absl::StatusOr<std::unique_ptr<AnnBackend>> BuildExact(const float* vectors, const int64_t* ids,
                                                       int64_t n, int dim) {
  if (dim > kMaxDim) return absl::InvalidArgumentError("exact index: too many dimensions");
  return std::unique_ptr<AnnBackend>(new ExactBackend(
      dim, std::vector<int64_t>(ids, ids + n), std::vector<float>(vectors, vectors + n * dim)));
}

absl::StatusOr<std::unique_ptr<AnnBackend>> ReadExact(absl::string_view bytes) {
  return ExactBackend::Read(bytes);
}

}  // namespace towerps::index::internal::TOWERPS_SIMD_NS

#undef hnswlib
#ifdef TOWERPS_SIMD_PRAGMA
#undef USE_AVX
#pragma GCC pop_options
#undef TOWERPS_SIMD_PRAGMA
#endif
