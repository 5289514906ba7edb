// A fixed pool of threads that runs the shard searches of concurrent queries
// (sharded_index.h): ParallelFor(n, fn) runs fn(0..n-1) on the caller and up to
// n - 1 pool threads at once and returns when all have run. No thread per call;
// the caller keeps claiming its own tasks, so a pool busy with other queries
// delays nobody (it only helps less).
//
// Threads: `threads` named "shard_search", started by the constructor and joined by
// the destructor. Thread-safety: ParallelFor is thread-safe.
#ifndef TOWERPS_INDEX_SHARD_SEARCH_POOL_H_
#define TOWERPS_INDEX_SHARD_SEARCH_POOL_H_

#include <deque>
#include <memory>
#include <thread>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"

namespace towerps::index {

class ShardSearchPool {
 public:
  explicit ShardSearchPool(int threads);
  ~ShardSearchPool();
  ShardSearchPool(const ShardSearchPool&) = delete;
  ShardSearchPool& operator=(const ShardSearchPool&) = delete;

  // fn(i) for every i in [0, n), each once, concurrently; fn must be thread-safe.
  void ParallelFor(int n, absl::FunctionRef<void(int)> fn);

 private:
  struct Job;
  static void RunTasks(Job& job);
  void Work();

  absl::Mutex mu_;
  std::deque<std::shared_ptr<Job>> queue_ ABSL_GUARDED_BY(mu_);  // one entry per helper asked
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace towerps::index

#endif  // TOWERPS_INDEX_SHARD_SEARCH_POOL_H_
