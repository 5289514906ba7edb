#include "index/shard_search_pool.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>

namespace towerps::index {

struct ShardSearchPool::Job {
  Job(int n, absl::FunctionRef<void(int)> fn) : n(n), fn(fn) {}
  const int n;
  // Called only for a claimed task: the caller waits for every claimed task, so
  // fn outlives its calls even when a late helper still holds the Job.
  const absl::FunctionRef<void(int)> fn;
  std::atomic<int> next{0};
  absl::Mutex mu;
  int done ABSL_GUARDED_BY(mu) = 0;
};

ShardSearchPool::ShardSearchPool(int threads) {
  for (int t = 0; t < threads; ++t) threads_.emplace_back([this] { Work(); });
}

ShardSearchPool::~ShardSearchPool() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  for (auto& thread : threads_) thread.join();
}

void ShardSearchPool::RunTasks(Job& job) {
  int ran = 0;
  for (int i = job.next++; i < job.n; i = job.next++) {
    job.fn(i);
    ++ran;
  }
  if (ran > 0) {
    absl::MutexLock lock(&job.mu);
    job.done += ran;
  }
}

void ShardSearchPool::ParallelFor(int n, absl::FunctionRef<void(int)> fn) {
  if (n <= 0) return;
  auto job = std::make_shared<Job>(n, fn);
  const int helpers = std::min<int>(n - 1, static_cast<int>(threads_.size()));
  if (helpers > 0) {
    absl::MutexLock lock(&mu_);
    for (int h = 0; h < helpers; ++h) queue_.push_back(job);
  }
  RunTasks(*job);
  absl::MutexLock lock(&job->mu);
  job->mu.Await(absl::Condition(
      +[](Job* j) { return j->done == j->n; }, job.get()));
}

void ShardSearchPool::Work() {
  pthread_setname_np(pthread_self(), "shard_search");
  while (true) {
    std::shared_ptr<Job> job;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](ShardSearchPool* p) { return p->stop_ || !p->queue_.empty(); }, this));
      if (queue_.empty()) return;  // stopping
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    RunTasks(*job);
  }
}

}  // namespace towerps::index
