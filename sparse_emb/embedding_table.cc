#include "sparse_emb/embedding_table.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/numeric_bounds.h"
#include "common/prefetch.h"
#include "common/status.h"
#include "glog/logging.h"
#include "sparse_emb/initializer.h"
#include "sparse_emb/optimizer.h"

namespace towerps::sparse_emb {
namespace {

// The batched walk (WalkGroup) goes through a stripe group in chunks of kChunk keys and
// prefetches index slots kSlotAhead keys ahead. Chunks of 64-256 keys measured alike
// (16: 15% slower, 32: 5%); 64 keeps a chunk's rows (up to 64 x 512 B) in L1/L2 until
// the chunk's visits. Slot distances of 16-64 measured alike.
constexpr size_t kChunk = 64;
constexpr size_t kSlotAhead = 16;

// Per-thread scratch reused by every batch call, so batches do not allocate per key
// (and after warm-up, not at all).
struct BatchPlan {
  std::vector<uint64_t> hashes;  // n: Mix64(keys[i])
  std::vector<uint32_t> order;   // n: key indices grouped by stripe
  std::vector<uint32_t> begin;   // stripes + 1: group bounds in `order`
  std::vector<float> scratch;    // 3 * dim floats
  std::vector<uint32_t> missing;  // Pull: keys of the current stripe without a row
  std::vector<const char*> rows;  // n: candidate rows, in `order`
};

// Raises a row's last-touched step to `step`. Pulls holding only the shared stripe lock
// touch rows concurrently, so the field is accessed atomically here (every other access
// holds the exclusive lock). A relaxed load and a conditional relaxed store, not a
// compare-and-swap loop: `lock cmpxchg` is a full barrier on x86, once per key, that
// waits for the store buffer (the previous rows' 256-byte copies) to drain. The price
// is a benign race: two pulls touching the same row at once may leave the smaller of
// their two steps (both current), which TTL and budget eviction tolerate. A pull
// stores only a step above the one it read, so the field never drops below a step set
// by a pull or push that completed before the racing pulls began.
void TouchRow(char* row, int64_t step) {
  std::atomic_ref<int64_t> last(*reinterpret_cast<int64_t*>(row + RowLayout::kStepOffset));
  if (step > last.load(std::memory_order_relaxed)) last.store(step, std::memory_order_relaxed);
}

BatchPlan& PlanBatch(absl::Span<const uint64_t> keys, int stripe_shift, int num_stripes,
                     int dim) {
  thread_local BatchPlan plan;
  const size_t n = keys.size();
  plan.hashes.resize(n);
  plan.order.resize(n);
  plan.rows.resize(n);
  plan.begin.assign(static_cast<size_t>(num_stripes) + 1, 0);
  plan.scratch.resize(3 * static_cast<size_t>(dim));
  for (size_t i = 0; i < n; ++i) {
    const uint64_t h = Mix64(keys[i]);
    plan.hashes[i] = h;
    ++plan.begin[(stripe_shift >= 64 ? 0 : h >> stripe_shift) + 1];
  }
  for (int s = 0; s < num_stripes; ++s) plan.begin[s + 1] += plan.begin[s];
  // Counting sort; `begin` is used as the fill cursor and restored afterwards.
  for (size_t i = 0; i < n; ++i) {
    const uint64_t s = stripe_shift >= 64 ? 0 : plan.hashes[i] >> stripe_shift;
    plan.order[plan.begin[s]++] = static_cast<uint32_t>(i);
  }
  for (int s = num_stripes; s > 0; --s) plan.begin[s] = plan.begin[s - 1];
  plan.begin[0] = 0;
  return plan;
}

// Walks the keys of one stripe group, order[b, e), calling visit(i, row) with the key's
// row or nullptr, kChunk keys at a time in two passes:
// 1. each key's candidate row (RowStore::Candidate; index slots prefetched kSlotAhead
//    keys ahead), whose first `prefetch_bytes` are prefetched at once; ahead(i) runs
//    here too (to prefetch the caller's own arrays). The loop is light, so the
//    out-of-order core keeps many slot misses in flight, and a row's fetch starts as
//    soon as its slot arrives;
// 2. each key in turn: its candidate confirmed by its key (or found by a full probe)
//    and visited, by when the rows have arrived.
// The single-pass walk this replaced found each candidate 8 keys ahead of its visit,
// inside the heavy loop: a slot that had not arrived stalled the core there, and pulls
// ran at 0.4-0.5 of the flat gather (now ~0.6, the median of seven runs) and pushes at
// under half of today's speed (bench/run.sh sparse_emb; BENCHMARKS.md). `visit` may insert rows (rows never
// move) but must not erase any.
template <typename Ahead, typename Visit>
void WalkGroup(const RowStore& store, BatchPlan& plan, absl::Span<const uint64_t> keys,
               size_t b, size_t e, size_t prefetch_bytes, Ahead&& ahead, Visit&& visit) {
  const char** cands = plan.rows.data();
  auto hash_at = [&](size_t j) { return plan.hashes[plan.order[j]]; };
  for (size_t chunk_begin = b; chunk_begin < e; chunk_begin += kChunk) {
    const size_t chunk_end = std::min(e, chunk_begin + kChunk);
    for (size_t j = chunk_begin; j < chunk_end; ++j) {
      if (j + kSlotAhead < e) store.PrefetchSlot(hash_at(j + kSlotAhead));
      cands[j] = store.Candidate(hash_at(j));
      if (cands[j] != nullptr) PrefetchRange(cands[j], prefetch_bytes);
      ahead(plan.order[j]);
    }
    for (size_t j = chunk_begin; j < chunk_end; ++j) {
      const uint32_t i = plan.order[j];
      const char* row = cands[j];
      if (row == nullptr || RowLayout::Key(row) != keys[i]) row = store.Find(keys[i], plan.hashes[i]);
      visit(i, const_cast<char*>(row));
    }
  }
}

// Calls fn(stripe, b, e) for every stripe with keys in the batch: order[b, e).
// Each thread starts at its own stripe, so concurrent writers do not queue up behind
// each other on stripe 0, 1, 2, ... in lockstep.
template <typename Fn>
void ForEachGroup(const BatchPlan& plan, int num_stripes, Fn&& fn) {
  thread_local const uint32_t start = static_cast<uint32_t>(
      Mix64(std::hash<std::thread::id>{}(std::this_thread::get_id())));
  for (int k = 0; k < num_stripes; ++k) {
    const int si = static_cast<int>((start + k) & (num_stripes - 1));
    if (plan.begin[si] != plan.begin[si + 1]) fn(si, plan.begin[si], plan.begin[si + 1]);
  }
}

int Log2(int x) {
  int bits = 0;
  while ((1 << bits) < x) ++bits;
  return bits;
}

}  // namespace

absl::StatusOr<std::unique_ptr<EmbeddingTable>> EmbeddingTable::Create(
    const TableConfig& config, MetricsRegistry* metrics) {
  TOWERPS_RETURN_IF_ERROR(config.Validate());
  return std::unique_ptr<EmbeddingTable>(new EmbeddingTable(config, metrics));
}

EmbeddingTable::EmbeddingTable(const TableConfig& config, MetricsRegistry* metrics)
    : config_(config),
      layout_(config.dim, config.dtype, OptimizerStateFloats(config.optimizer, config.dim)),
      stripe_shift_(64 - Log2(config.num_stripes)),
      stripe_budget_(config.eviction.max_rows == 0
                         ? 0
                         : (config.eviction.max_rows + config.num_stripes - 1) /
                               config.num_stripes),
      row_prefetch_bytes_(std::min<size_t>(512, layout_.row_bytes)) {
  const bool admission = config.admission.min_count > 1;
  const int64_t sketch_width =
      admission ? std::max<int64_t>(64, config.admission.sketch_width / config.num_stripes) : 0;
  stripes_.reserve(config.num_stripes);
  for (int i = 0; i < config.num_stripes; ++i) {
    stripes_.push_back(
        std::make_unique<Stripe>(layout_, sketch_width, config.admission.sketch_depth));
  }
  if (metrics != nullptr) {
    const std::string prefix = absl::StrCat("towerps_sparse_emb_", config.name, "_");
    admitted_metric_ = metrics->GetCounter(prefix + "admitted_total");
    rejected_metric_ = metrics->GetCounter(prefix + "rejected_total");
    evicted_metric_ = metrics->GetCounter(prefix + "evicted_total");
    rows_metric_ = metrics->GetGauge(prefix + "rows");
    memory_metric_ = metrics->GetGauge(prefix + "memory_bytes");
    memory_metric_->Set(static_cast<double>(MemoryBytes()));
  }
}

EmbeddingTable::~EmbeddingTable() = default;

void EmbeddingTable::Publish(const Tally& tally) {
  total_rows_.fetch_add(tally.admitted - tally.evicted, std::memory_order_relaxed);
  if (admitted_metric_ == nullptr) return;
  if (tally.admitted != 0) admitted_metric_->Increment(tally.admitted);
  if (tally.rejected != 0) rejected_metric_->Increment(tally.rejected);
  if (tally.evicted != 0) evicted_metric_->Increment(tally.evicted);
  rows_metric_->Set(static_cast<double>(size()));
}

char* EmbeddingTable::FindOrAdmit(Stripe* s, uint64_t key, uint64_t hash, int64_t step,
                                  float* scratch, Tally* tally) {
  if (config_.admission.min_count > 1 && s->sketch.Add(key) < config_.admission.min_count) {
    ++tally->rejected;
    return nullptr;
  }
  char* row = s->store.Insert(key, hash);
  RowLayout::SetStep(row, step);
  RowLayout::SetCountWord(row, RowLayout::kDirtyBit);
  InitOptimizerState(config_.optimizer, config_.dim, RowLayout::State(row));
  if (config_.dtype == DType::kFp32) {
    InitializeRow(config_.initializer, key, config_.dim,
                  reinterpret_cast<float*>(layout_.Embedding(row)));
  } else {
    InitializeRow(config_.initializer, key, config_.dim, scratch);
    layout_.WriteEmbedding(row, scratch);
  }
  ++tally->admitted;
  return row;
}

void EmbeddingTable::EraseLocked(Stripe* s, char* row) {
  const uint64_t key = RowLayout::Key(row);
  s->store.Erase(key, Mix64(key));
  if (track_erased_) s->erased_since_save.push_back(key);
}

void EmbeddingTable::EvictOldestLocked(Stripe* s, int64_t n, Tally* tally) {
  if (n <= 0) return;
  thread_local std::vector<int64_t> steps;
  steps.clear();
  s->store.ForEachRow([&](char* row) { steps.push_back(RowLayout::Step(row)); });
  n = std::min<int64_t>(n, static_cast<int64_t>(steps.size()));
  if (n == 0) return;
  std::nth_element(steps.begin(), steps.begin() + (n - 1), steps.end());
  const int64_t threshold = steps[n - 1];
  int64_t at_threshold = n - std::count_if(steps.begin(), steps.end(),
                                           [&](int64_t v) { return v < threshold; });
  s->store.ForEachRow([&](char* row) {
    const int64_t step = RowLayout::Step(row);
    if (step < threshold || (step == threshold && at_threshold-- > 0)) {
      EraseLocked(s, row);
      ++tally->evicted;
    }
  });
}

void EmbeddingTable::EnforceBudgetLocked(Stripe* s, Tally* tally) {
  if (stripe_budget_ == 0 || s->store.size() <= stripe_budget_) return;
  // Evict down to 31/32 of the budget so the scan is amortised over many inserts.
  const int64_t target = stripe_budget_ - stripe_budget_ / 32;
  EvictOldestLocked(s, s->store.size() - target, tally);
}

void EmbeddingTable::Pull(absl::Span<const uint64_t> keys, int64_t step, float* out) {
  const int dim = config_.dim;
  BatchPlan& plan = PlanBatch(keys, stripe_shift_, config_.num_stripes, dim);
  Tally tally;
  ForEachGroup(plan, config_.num_stripes, [&](int si, size_t b, size_t e) {
    Stripe* s = stripes_[si].get();
    // Existing rows are read under the shared lock (pulls of different threads run in
    // parallel; the last-touched step is raised atomically); keys without a row are
    // remembered and created afterwards under the exclusive lock.
    plan.missing.clear();
    {
      absl::ReaderMutexLock lock(&s->mu);
      WalkGroup(s->store, plan, keys, b, e, row_prefetch_bytes_, [](uint32_t) {},
                [&](uint32_t i, char* row) {
        if (row == nullptr) {
          plan.missing.push_back(i);
          return;
        }
        layout_.ReadEmbedding(row, out + static_cast<size_t>(i) * dim);
        TouchRow(row, step);
      });
    }
    if (plan.missing.empty()) return;
    absl::MutexLock lock(&s->mu);
    bool created = false;
    for (uint32_t i : plan.missing) {
      float* dst = out + static_cast<size_t>(i) * dim;
      char* row = s->store.Find(keys[i], plan.hashes[i]);  // another thread may have made it
      if (row == nullptr) {
        row = FindOrAdmit(s, keys[i], plan.hashes[i], step, plan.scratch.data(), &tally);
        created |= row != nullptr;
      }
      if (row == nullptr) {
        std::memset(dst, 0, sizeof(float) * dim);
        continue;
      }
      layout_.ReadEmbedding(row, dst);
      TouchRow(row, step);
    }
    if (created) EnforceBudgetLocked(s, &tally);
  });
  Publish(tally);
}

void EmbeddingTable::Lookup(absl::Span<const uint64_t> keys, float* out) const {
  const int dim = config_.dim;
  BatchPlan& plan = PlanBatch(keys, stripe_shift_, config_.num_stripes, dim);
  ForEachGroup(plan, config_.num_stripes, [&](int si, size_t b, size_t e) {
    const Stripe* s = stripes_[si].get();
    absl::ReaderMutexLock lock(&s->mu);
    WalkGroup(s->store, plan, keys, b, e, row_prefetch_bytes_, [](uint32_t) {},
              [&](uint32_t i, const char* row) {
      float* dst = out + static_cast<size_t>(i) * dim;
      if (row == nullptr) {
        std::memset(dst, 0, sizeof(float) * dim);
      } else {
        layout_.ReadEmbedding(row, dst);
      }
    });
  });
}

void EmbeddingTable::Push(absl::Span<const uint64_t> keys, const float* grads, float lr,
                          int64_t step) {
  if (!(lr > 0.0f && lr <= kMaxLearningRate)) {
    LOG_EVERY_N(ERROR, 1000) << "sparse_emb " << config_.name << ": ignoring push with lr " << lr;
    return;
  }
  const int dim = config_.dim;
  BatchPlan& plan = PlanBatch(keys, stripe_shift_, config_.num_stripes, dim);
  float* grad_scratch = plan.scratch.data();
  float* w_scratch = grad_scratch + dim;
  float* init_scratch = w_scratch + dim;
  Tally tally;
  auto prefetch_grad = [&](uint32_t i) {
    const float* g = grads + static_cast<size_t>(i) * dim;
    PrefetchRange(g, sizeof(float) * dim);
  };
  ForEachGroup(plan, config_.num_stripes, [&](int si, size_t b, size_t e) {
    Stripe* s = stripes_[si].get();
    absl::MutexLock lock(&s->mu);
    bool created = false;
    WalkGroup(s->store, plan, keys, b, e, row_prefetch_bytes_, prefetch_grad,
              [&](uint32_t i, char* row) {
      if (row == nullptr) {
        row = FindOrAdmit(s, keys[i], plan.hashes[i], step, init_scratch, &tally);
        if (row == nullptr) return;
        created = true;
      }
      const uint32_t word = RowLayout::CountWord(row);
      const uint32_t count = std::min((word & RowLayout::kCountMask) + 1, RowLayout::kCountMask);
      const float* g = grads + static_cast<size_t>(i) * dim;
      if (config_.dtype == DType::kFp32) {
        ApplyOptimizer(config_.optimizer, dim, lr, count, step, g, grad_scratch,
                       reinterpret_cast<float*>(layout_.Embedding(row)), RowLayout::State(row));
      } else {
        layout_.ReadEmbedding(row, w_scratch);
        ApplyOptimizer(config_.optimizer, dim, lr, count, step, g, grad_scratch, w_scratch,
                       RowLayout::State(row));
        layout_.WriteEmbedding(row, w_scratch);
      }
      RowLayout::SetCountWord(row, count | RowLayout::kDirtyBit);
      if (step > RowLayout::Step(row)) RowLayout::SetStep(row, step);
    });
    if (created) EnforceBudgetLocked(s, &tally);
  });
  Publish(tally);
}

int64_t EmbeddingTable::Evict(int64_t now_step) {
  Tally tally;
  if (config_.eviction.ttl_steps > 0) {
    const int64_t oldest_kept = now_step - config_.eviction.ttl_steps;
    for (auto& stripe : stripes_) {
      Stripe* s = stripe.get();
      absl::MutexLock lock(&s->mu);
      s->store.ForEachRow([&](char* row) {
        if (RowLayout::Step(row) < oldest_kept) {
          EraseLocked(s, row);
          ++tally.evicted;
        }
      });
    }
  }
  Publish(tally);
  if (memory_metric_ != nullptr) memory_metric_->Set(static_cast<double>(MemoryBytes()));
  return tally.evicted;
}

std::optional<RowInfo> EmbeddingTable::GetRowInfo(uint64_t key) const {
  const uint64_t hash = Mix64(key);
  const Stripe* s = stripes_[StripeOf(hash)].get();
  absl::MutexLock lock(&s->mu);
  const char* row = s->store.Find(key, hash);
  if (row == nullptr) return std::nullopt;
  return RowInfo{RowLayout::Step(row), RowLayout::CountWord(row) & RowLayout::kCountMask};
}

bool EmbeddingTable::ReadOptimizerState(uint64_t key, float* state) const {
  const uint64_t hash = Mix64(key);
  const Stripe* s = stripes_[StripeOf(hash)].get();
  absl::MutexLock lock(&s->mu);
  const char* row = s->store.Find(key, hash);
  if (row == nullptr) return false;
  std::memcpy(state, RowLayout::State(row), sizeof(float) * layout_.state_floats);
  return true;
}

size_t EmbeddingTable::MemoryBytes() const {
  size_t bytes = 0;
  for (const auto& stripe : stripes_) {
    absl::MutexLock lock(&stripe->mu);
    bytes += stripe->store.MemoryBytes() + stripe->sketch.MemoryBytes() +
             stripe->erased_since_save.capacity() * sizeof(uint64_t);
  }
  return bytes;
}

void EmbeddingTable::LockAll() const {
  for (const auto& stripe : stripes_) stripe->mu.Lock();
}

void EmbeddingTable::UnlockAll() const {
  for (auto it = stripes_.rbegin(); it != stripes_.rend(); ++it) (*it)->mu.Unlock();
}

}  // namespace towerps::sparse_emb
