// Batches the queries that wait for the same ShardedIndex (docs/index.md, "Batching
// and threads"). A caller whose query arrives while max_in_flight batches are being
// searched waits; when a batch ends, one waiting caller becomes the leader of the
// next batch: its own query plus the queries queued behind it for the same index
// (up to max_batch, first come first served), searched with one
// ShardedIndex::SearchBatch on the leader's thread (and the index's pool). Nobody
// waits for more queries to arrive: an idle server answers each query as a batch of
// one, at once, so batching adds no latency when idle.
//
// Threads: none of its own (leaders are callers). Thread-safety: Search is
// thread-safe; each caller gets exactly its own query's answer.
#ifndef TOWERPS_INDEX_QUERY_BATCHER_H_
#define TOWERPS_INDEX_QUERY_BATCHER_H_

#include <cstdint>
#include <deque>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "index/sharded_index.h"

namespace towerps::index {

struct QueryBatcherOptions {
  // Most queries in one batch; >= 1 (1: every query alone, still queued).
  int max_batch = 32;
  // Batches searched at once; >= 1. Callers beyond them queue (and are batched).
  int max_in_flight = 1;

  absl::Status Validate() const;
};

class QueryBatcher {
 public:
  explicit QueryBatcher(const QueryBatcherOptions& options) : options_(options) {}

  // ShardedIndex::Search(query) on `index`, batched with other waiting queries on
  // the same index. `index` and `query` must stay valid until it returns.
  absl::StatusOr<std::vector<Hit>> Search(const ShardedIndex& index, const BatchQuery& query);

  struct Stats {
    int64_t batches = 0;
    int64_t queries = 0;
    int largest = 0;  // the most queries one batch held
  };
  Stats stats() const;

 private:
  struct Pending {
    const ShardedIndex* index = nullptr;
    const BatchQuery* query = nullptr;
    bool taken = false;  // in some leader's batch
    bool done = false;
    absl::StatusOr<std::vector<Hit>> answer = std::vector<Hit>();
  };
  struct Waiter {
    QueryBatcher* batcher;
    Pending* pending;
  };
  static bool CanProceed(Waiter* w);

  const QueryBatcherOptions options_;
  mutable absl::Mutex mu_;
  std::deque<Pending*> queue_ ABSL_GUARDED_BY(mu_);  // not yet taken
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  Stats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace towerps::index

#endif  // TOWERPS_INDEX_QUERY_BATCHER_H_
