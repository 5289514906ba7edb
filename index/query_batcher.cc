#include "index/query_batcher.h"

#include <algorithm>
#include <utility>

namespace towerps::index {

absl::Status QueryBatcherOptions::Validate() const {
  if (max_batch < 1) return absl::InvalidArgumentError("max_batch must be >= 1");
  if (max_in_flight < 1) return absl::InvalidArgumentError("max_in_flight must be >= 1");
  return absl::OkStatus();
}

bool QueryBatcher::CanProceed(Waiter* w) {
  w->batcher->mu_.AssertReaderHeld();
  return w->pending->done ||
         (!w->pending->taken && w->batcher->in_flight_ < w->batcher->options_.max_in_flight);
}

absl::StatusOr<std::vector<Hit>> QueryBatcher::Search(const ShardedIndex& index,
                                                      const BatchQuery& query) {
  Pending self;
  self.index = &index;
  self.query = &query;
  std::vector<Pending*> batch;
  {
    absl::MutexLock lock(&mu_);
    queue_.push_back(&self);
    Waiter waiter{this, &self};
    mu_.Await(absl::Condition(&CanProceed, &waiter));
    if (self.done) return std::move(self.answer);
    // Lead: this query first, then the queued ones for the same index, in order.
    batch.push_back(&self);
    self.taken = true;
    queue_.erase(std::find(queue_.begin(), queue_.end(), &self));
    for (auto it = queue_.begin();
         it != queue_.end() && static_cast<int>(batch.size()) < options_.max_batch;) {
      if ((*it)->index != &index) {
        ++it;
        continue;
      }
      (*it)->taken = true;
      batch.push_back(*it);
      it = queue_.erase(it);
    }
    ++in_flight_;
    ++stats_.batches;
    stats_.queries += static_cast<int64_t>(batch.size());
    stats_.largest = std::max(stats_.largest, static_cast<int>(batch.size()));
  }
  std::vector<BatchQuery> queries;
  queries.reserve(batch.size());
  for (const Pending* p : batch) queries.push_back(*p->query);
  std::vector<absl::StatusOr<std::vector<Hit>>> answers = index.SearchBatch(queries);
  absl::MutexLock lock(&mu_);
  --in_flight_;
  for (size_t i = 0; i < batch.size(); ++i) {
    batch[i]->answer = std::move(answers[i]);
    batch[i]->done = true;
  }
  return std::move(self.answer);
}

QueryBatcher::Stats QueryBatcher::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

}  // namespace towerps::index
