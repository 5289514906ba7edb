// A served index that changes without a restart (LSM-style): the queries read an
// immutable IndexSnapshot
//   { base: the loaded shards of one version, fresh: items added or changed since
//     (searched exactly), masked: keys the base must never return (removed, or
//     changed and now in fresh), version, applied delta seq }
// and a new snapshot is published by swapping one pointer. docs/index.md, "Fresh
// items and new versions".
//
// LiveIndex holds the current snapshot. Current() copies the shared_ptr under a
// mutex held only for that copy; a query keeps its snapshot for the whole request,
// so publishing never waits for queries and an old snapshot (and its shards) is
// freed when its last query ends. Applying deltas and loading versions happen on
// the caller of Poll() or on the watcher thread "index_watch" (one at a time).
//
// A root (index/index_root.h: CURRENT + v-<n>/ + deltas/) is live: Poll() loads
// the version CURRENT names when it changed (verified: MANIFEST, CRCs, same dim and
// shard count; a failed load keeps the old version), then applies the deltas of the
// served version past the applied seq, in order, each once. A delta for another
// version is skipped; a malformed delta or one past the bounds is refused whole
// (logged, counted) and blocks the later ones until a new version is published.
// A plain index dir (no CURRENT) is static: Poll() does nothing.
// Shard servers (a subset of the shards) keep only the delta keys of their shards.
//
// Metrics (when a registry is given): towerps_serve_index_version,
// towerps_serve_index_swaps_total, towerps_serve_deltas_applied_total,
// towerps_serve_delta_errors_total, towerps_serve_index_load_errors_total,
// towerps_serve_fresh_items,
// towerps_serve_freshness_seconds (now - the delta's created-at, when searchable).
//
// Thread-safe.
#ifndef TOWERPS_INDEX_LIVE_INDEX_H_
#define TOWERPS_INDEX_LIVE_INDEX_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "common/metrics.h"
#include "index/item_delta.h"
#include "index/query_batcher.h"
#include "index/sharded_index.h"

namespace towerps::index {

struct LiveIndexOptions {
  // An index root (CURRENT, v-<n>/, deltas/) or a plain index dir (static).
  std::string dir;
  // Shards to load (empty: all); a shard server's subset.
  std::vector<int> shards;
  ShardedIndexOptions sharded;
  // Most fresh items (added or changed since the version was built) and most
  // removed keys held over one version; >= 0. A delta past either is refused: build
  // and publish a new version.
  int64_t max_fresh_items = 100000;
  int64_t max_tombstones = 100000;
  // Largest delta file read, bytes; >= 1.
  int64_t max_delta_bytes = int64_t{1} << 30;
  // The watcher thread's poll interval; 0 = no thread (Poll() by hand).
  int64_t watch_interval_ms = 1000;

  absl::Status Validate() const;
};

// The items added or changed since the base version, searched exactly. Immutable.
struct FreshSegment {
  std::vector<uint64_t> keys;                         // n
  std::vector<std::string> raw_ids;                   // n
  std::vector<float> vectors;                         // n * dim
  absl::flat_hash_map<uint64_t, int64_t> row_of_key;  // key -> row
  std::unique_ptr<AnnIndex> index;                    // exact engine; null when n == 0
};

// One immutable view of the served index. Thread-safe.
class IndexSnapshot {
 public:
  // The k best items for query (dim floats): the base's hits without masked keys,
  // merged with the fresh segment's, never one of `exclude`. Errors as
  // ShardedIndex::Search. With a batcher, the base's searches are batched with other
  // waiting queries (query_batcher.h).
  absl::StatusOr<std::vector<Hit>> Search(const float* query, int k, int ef_search,
                                          absl::Span<const uint64_t> exclude,
                                          QueryBatcher* batcher = nullptr) const;
  // The raw id of a fresh item, or nullptr (then the exported table knows it).
  const std::string* FreshRawId(uint64_t key) const;

  const ShardedIndex& base() const { return *base_; }
  int dim() const { return base_->dim(); }
  const std::string& version() const { return version_; }  // "" for a plain dir
  int64_t version_number() const { return version_number_; }
  uint64_t applied_delta_seq() const { return applied_seq_; }
  int64_t fresh_items() const { return static_cast<int64_t>(fresh_->keys.size()); }
  int64_t removed_items() const { return static_cast<int64_t>(removed_->size()); }
  // Items answered from: the loaded base shards minus removed, plus new fresh ones
  // (approximate: a fresh key may replace a base item).
  int64_t items() const;

 private:
  friend class LiveIndex;
  std::shared_ptr<const ShardedIndex> base_;  // shared: by every snapshot of a version
  std::shared_ptr<const FreshSegment> fresh_;
  // Keys removed since the version (subset of the loaded shards).
  std::shared_ptr<const absl::flat_hash_set<uint64_t>> removed_;
  std::string version_;
  int64_t version_number_ = 0;
  uint64_t applied_seq_ = 0;
};

class LiveIndex {
 public:
  // Loads the version (or plain dir) and applies the pending deltas; starts the
  // watcher when options.watch_interval_ms > 0 and dir is a root. metrics may be
  // null (borrowed). Errors: InvalidArgument (options), the load's errors.
  static absl::StatusOr<std::unique_ptr<LiveIndex>> Open(const LiveIndexOptions& options,
                                                         MetricsRegistry* metrics);
  // A static live index over an index already loaded (no root, no watcher).
  static std::unique_ptr<LiveIndex> Static(std::unique_ptr<ShardedIndex> index);
  ~LiveIndex();  // Stop()

  // The snapshot to answer one request with (never null).
  std::shared_ptr<const IndexSnapshot> Current() const;

  // Checks CURRENT and the deltas now (blocks; serialised with the watcher).
  // Returns the first error met (already logged and counted); the served snapshot
  // is then the last good one. A version that failed to load and a refused delta
  // are retried only by Poll() and Wake(), not by the watcher's periodic checks.
  absl::Status Poll() { return PollOnce(/*retry_failed=*/true); }
  // Asks the watcher for an immediate Poll (SIGHUP). Does not block.
  void Wake();
  // Joins the watcher. Idempotent.
  void Stop();

  bool is_root() const { return is_root_; }

 private:
  LiveIndex(const LiveIndexOptions& options, MetricsRegistry* metrics);
  // A version's snapshot with no deltas ("" for a plain dir).
  static std::shared_ptr<const IndexSnapshot> BaseSnapshot(std::shared_ptr<const ShardedIndex> base,
                                                           const std::string& version);
  absl::Status PollOnce(bool retry_failed);
  void Publish(std::shared_ptr<const IndexSnapshot> next);
  // From `from` (same version), applies the deltas past its seq; returns the last
  // good snapshot (== from when nothing applied) and the first error.
  std::shared_ptr<const IndexSnapshot> ApplyDeltas(std::shared_ptr<const IndexSnapshot> from,
                                                   bool retry_failed, absl::Status* error)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(poll_mu_);
  absl::StatusOr<std::shared_ptr<const IndexSnapshot>> Apply(const IndexSnapshot& from,
                                                             const ItemDelta& delta) const;
  absl::StatusOr<std::shared_ptr<const IndexSnapshot>> LoadVersion(const std::string& version);
  void WatchLoop();

  // Constant after construction.
  const LiveIndexOptions options_;
  bool is_root_ = false;
  Gauge* version_gauge_ = nullptr;
  Gauge* fresh_gauge_ = nullptr;
  Counter* swaps_ = nullptr;
  Counter* applied_ = nullptr;
  Counter* delta_errors_ = nullptr;
  Counter* load_errors_ = nullptr;
  Histogram* freshness_ = nullptr;

  mutable absl::Mutex mu_;  // held only to copy or swap the pointer
  std::shared_ptr<const IndexSnapshot> current_ ABSL_GUARDED_BY(mu_);

  absl::Mutex poll_mu_;                                   // one Poll at a time (watcher or caller)
  std::string failed_version_ ABSL_GUARDED_BY(poll_mu_);  // last version that failed to load
  uint64_t blocked_seq_ ABSL_GUARDED_BY(poll_mu_) = 0;    // a refused delta (0: none)

  absl::Mutex wake_mu_;
  bool wake_ ABSL_GUARDED_BY(wake_mu_) = false;
  bool stop_ ABSL_GUARDED_BY(wake_mu_) = false;
  std::thread watcher_;  // "index_watch"
};

}  // namespace towerps::index

#endif  // TOWERPS_INDEX_LIVE_INDEX_H_
