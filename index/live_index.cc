#include "index/live_index.h"

#include <pthread.h>

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/file_util.h"
#include "common/status.h"
#include "glog/logging.h"
#include "index/index_root.h"

namespace towerps::index {
namespace {

// Rounds of "search the base, exclude the masked keys it returned, search again"
// before one search that excludes every masked key at once.
constexpr int kMaskRounds = 3;

std::shared_ptr<const FreshSegment> EmptySegment() {
  static const auto* empty =
      new std::shared_ptr<const FreshSegment>(std::make_shared<FreshSegment>());
  return *empty;
}

}  // namespace

absl::Status LiveIndexOptions::Validate() const {
  if (dir.empty()) return absl::InvalidArgumentError("live index: dir is required");
  if (max_fresh_items < 0 || max_tombstones < 0) {
    return absl::InvalidArgumentError("live index: max_fresh_items, max_tombstones must be >= 0");
  }
  if (max_delta_bytes < 1) return absl::InvalidArgumentError("max_delta_bytes must be >= 1");
  if (watch_interval_ms < 0) return absl::InvalidArgumentError("watch_interval_ms must be >= 0");
  return sharded.Validate();
}

// ---- IndexSnapshot ----

absl::StatusOr<std::vector<Hit>> IndexSnapshot::Search(const float* query, int k, int ef_search,
                                                       absl::Span<const uint64_t> exclude,
                                                       QueryBatcher* batcher) const {
  auto search_base = [&](absl::Span<const uint64_t> excluded) {
    return batcher != nullptr ? batcher->Search(*base_, BatchQuery{query, k, ef_search, excluded})
                              : base_->Search(query, k, ef_search, excluded);
  };
  const FreshSegment& fresh = *fresh_;
  auto masked = [&](uint64_t key) {
    return removed_->contains(key) || fresh.row_of_key.contains(key);
  };
  // A version without deltas (the common case): the base alone, no copy of `exclude`.
  if (removed_->empty() && fresh.keys.empty()) return search_base(exclude);
  std::vector<uint64_t> excluded(exclude.begin(), exclude.end());
  std::vector<Hit> base_hits;
  for (int round = 0;; ++round) {
    TOWERPS_ASSIGN_OR_RETURN(base_hits, search_base(excluded));
    const size_t before = excluded.size();
    for (const Hit& hit : base_hits) {
      if (masked(hit.key)) excluded.push_back(hit.key);
    }
    if (excluded.size() == before) break;
    if (round + 1 == kMaskRounds) {  // many masked keys near this query: all at once
      excluded.assign(exclude.begin(), exclude.end());
      excluded.insert(excluded.end(), removed_->begin(), removed_->end());
      excluded.insert(excluded.end(), fresh.keys.begin(), fresh.keys.end());
      TOWERPS_ASSIGN_OR_RETURN(base_hits, search_base(excluded));
      break;
    }
  }
  base_hits.erase(std::remove_if(base_hits.begin(), base_hits.end(),
                                 [&](const Hit& h) { return masked(h.key); }),
                  base_hits.end());
  if (fresh.index == nullptr) return base_hits;
  const int fk = static_cast<int>(std::min<int64_t>(k, fresh.index->size()));
  std::vector<int64_t> ids(fk);
  std::vector<float> scores(fk);
  std::vector<int64_t> fresh_excluded(exclude.begin(), exclude.end());
  TOWERPS_RETURN_IF_ERROR(
      fresh.index->Search(query, fk, 0, fresh_excluded, ids.data(), scores.data()));
  std::vector<Hit> fresh_hits;
  for (int i = 0; i < fk && ids[i] != -1; ++i) {
    fresh_hits.push_back({static_cast<uint64_t>(ids[i]), scores[i]});
  }
  const std::vector<Hit> lists[] = {std::move(base_hits), std::move(fresh_hits)};
  return MergeHits(lists, k);
}

const std::string* IndexSnapshot::FreshRawId(uint64_t key) const {
  auto it = fresh_->row_of_key.find(key);
  return it == fresh_->row_of_key.end() ? nullptr : &fresh_->raw_ids[it->second];
}

int64_t IndexSnapshot::items() const {
  int64_t n = 0;
  for (int s : base_->loaded_shards()) n += base_->manifest().shards[s].count;
  return std::max<int64_t>(0, n - removed_items()) + fresh_items();
}

// ---- LiveIndex ----

LiveIndex::LiveIndex(const LiveIndexOptions& options, MetricsRegistry* metrics)
    : options_(options) {
  if (metrics != nullptr) {
    version_gauge_ = metrics->GetGauge("towerps_serve_index_version");
    fresh_gauge_ = metrics->GetGauge("towerps_serve_fresh_items");
    swaps_ = metrics->GetCounter("towerps_serve_index_swaps_total");
    applied_ = metrics->GetCounter("towerps_serve_deltas_applied_total");
    delta_errors_ = metrics->GetCounter("towerps_serve_delta_errors_total");
    load_errors_ = metrics->GetCounter("towerps_serve_index_load_errors_total");
    freshness_ = metrics->GetHistogram("towerps_serve_freshness_seconds");
  }
}

std::shared_ptr<const IndexSnapshot> LiveIndex::BaseSnapshot(
    std::shared_ptr<const ShardedIndex> base, const std::string& version) {
  auto snapshot = std::make_shared<IndexSnapshot>();
  snapshot->base_ = std::move(base);
  snapshot->fresh_ = EmptySegment();
  snapshot->removed_ = std::make_shared<absl::flat_hash_set<uint64_t>>();
  snapshot->version_ = version;
  snapshot->version_number_ = version.empty() ? 0 : VersionNumberOfName(version);
  return snapshot;
}

std::unique_ptr<LiveIndex> LiveIndex::Static(std::unique_ptr<ShardedIndex> index) {
  LiveIndexOptions options;
  options.dir = "(static)";
  std::unique_ptr<LiveIndex> live(new LiveIndex(options, nullptr));
  live->Publish(BaseSnapshot(std::move(index), ""));
  return live;
}

absl::StatusOr<std::unique_ptr<LiveIndex>> LiveIndex::Open(const LiveIndexOptions& options,
                                                           MetricsRegistry* metrics) {
  TOWERPS_RETURN_IF_ERROR(options.Validate());
  std::unique_ptr<LiveIndex> live(new LiveIndex(options, metrics));
  live->is_root_ = IsIndexRoot(options.dir);
  if (!live->is_root_) {
    TOWERPS_ASSIGN_OR_RETURN(auto index,
                             ShardedIndex::Load(options.dir, options.shards, options.sharded));
    live->Publish(BaseSnapshot(std::move(index), ""));
    return live;
  }
  {
    absl::MutexLock lock(&live->poll_mu_);
    TOWERPS_ASSIGN_OR_RETURN(std::string version, ReadCurrentVersion(options.dir));
    TOWERPS_ASSIGN_OR_RETURN(auto first, live->LoadVersion(version));
    absl::Status error;  // a refused delta does not stop the server from starting
    live->Publish(live->ApplyDeltas(std::move(first), true, &error));
  }
  if (live->swaps_ != nullptr) live->swaps_->Increment();
  if (options.watch_interval_ms > 0) {
    live->watcher_ = std::thread([p = live.get()] { p->WatchLoop(); });
  }
  return live;
}

LiveIndex::~LiveIndex() { Stop(); }

std::shared_ptr<const IndexSnapshot> LiveIndex::Current() const {
  absl::MutexLock lock(&mu_);
  return current_;
}

void LiveIndex::Publish(std::shared_ptr<const IndexSnapshot> next) {
  if (version_gauge_ != nullptr) version_gauge_->Set(static_cast<double>(next->version_number()));
  if (fresh_gauge_ != nullptr) fresh_gauge_->Set(static_cast<double>(next->fresh_items()));
  std::shared_ptr<const IndexSnapshot> old;
  {
    absl::MutexLock lock(&mu_);
    old = std::move(current_);
    current_ = std::move(next);
  }
  // `old` is released here, outside the lock (the last query may already be done).
}

absl::StatusOr<std::shared_ptr<const IndexSnapshot>> LiveIndex::LoadVersion(
    const std::string& version) {
  const std::string dir = absl::StrCat(options_.dir, "/", version);
  TOWERPS_ASSIGN_OR_RETURN(auto index, ShardedIndex::Load(dir, options_.shards, options_.sharded));
  auto current = Current();
  if (current != nullptr) {
    if (index->dim() != current->dim()) {
      return absl::FailedPreconditionError(
          absl::StrCat(dir, " has dim ", index->dim(), ", the served index ", current->dim(),
                       ": a new dim needs a restart of serve (and of its clients)"));
    }
    if (index->manifest().shards.size() != current->base().manifest().shards.size()) {
      return absl::FailedPreconditionError(absl::StrCat(
          dir, " has ", index->manifest().shards.size(), " shards, the served index ",
          current->base().manifest().shards.size(), ": a new shard count needs a restart"));
    }
  }
  return BaseSnapshot(std::move(index), version);
}

absl::Status LiveIndex::PollOnce(bool retry_failed) {
  if (!is_root_) return absl::OkStatus();
  absl::MutexLock lock(&poll_mu_);
  std::shared_ptr<const IndexSnapshot> from = Current();
  absl::Status first;
  bool swapped = false;
  auto version = ReadCurrentVersion(options_.dir);
  if (!version.ok()) {
    first = version.status();
  } else if (*version != from->version() && (retry_failed || *version != failed_version_)) {
    auto loaded = LoadVersion(*version);
    if (loaded.ok()) {
      from = *std::move(loaded);
      swapped = true;
      failed_version_.clear();
      blocked_seq_ = 0;
    } else {
      first = Annotate(loaded.status(), absl::StrCat("new version ", *version));
      failed_version_ = *version;
    }
  }
  if (!first.ok()) {
    LOG(ERROR) << "index " << options_.dir << ": " << first << " (still serving " << from->version()
               << ")";
    if (load_errors_ != nullptr) load_errors_->Increment();
  }
  absl::Status delta_error;
  std::shared_ptr<const IndexSnapshot> next = ApplyDeltas(from, retry_failed, &delta_error);
  if (first.ok()) first = delta_error;
  if (swapped || next != from) {
    Publish(next);
    if (swapped) {
      if (swaps_ != nullptr) swaps_->Increment();
      LOG(INFO) << "index " << options_.dir << ": now serving " << next->version() << " ("
                << next->items() << " items, deltas applied through seq "
                << next->applied_delta_seq() << ")";
    }
  }
  return first;
}

std::shared_ptr<const IndexSnapshot> LiveIndex::ApplyDeltas(
    std::shared_ptr<const IndexSnapshot> from, bool retry_failed, absl::Status* error) {
  auto seqs = ListItemDeltas(options_.dir);
  if (!seqs.ok()) {
    *error = seqs.status();
    LOG(ERROR) << "index " << options_.dir << ": " << *error;
    return from;
  }
  std::vector<int64_t> created_ms;  // of the deltas applied
  for (uint64_t seq : *seqs) {
    if (seq <= from->applied_delta_seq()) continue;
    if (blocked_seq_ != 0 && !retry_failed) break;
    const std::string path = ItemDeltaPath(options_.dir, seq);
    absl::StatusOr<std::shared_ptr<const IndexSnapshot>> next;
    absl::StatusOr<std::string> bytes = ReadFileToString(path);
    absl::StatusOr<ItemDelta> delta = absl::UnknownError("");
    if (!bytes.ok()) {
      next = bytes.status();
    } else if (static_cast<int64_t>(bytes->size()) > options_.max_delta_bytes) {
      next = absl::InvalidArgumentError(
          absl::StrCat(bytes->size(), " bytes, more than ", options_.max_delta_bytes));
    } else if (delta = ParseItemDelta(*bytes); !delta.ok()) {
      next = delta.status();
    } else if (delta->seq != seq) {
      next = absl::DataLossError(absl::StrCat("the file holds seq ", delta->seq));
    } else if (delta->base_version != from->version()) {
      // Made for another version (an older one, or one not yet served): a no-op here.
      LOG(INFO) << "index " << options_.dir << ": delta " << seq << " is for "
                << delta->base_version << ", serving " << from->version() << ": skipped";
      auto skipped = std::make_shared<IndexSnapshot>(*from);
      skipped->applied_seq_ = seq;
      from = std::move(skipped);
      continue;
    } else {
      next = Apply(*from, *delta);
    }
    if (!next.ok()) {
      *error = Annotate(next.status(), absl::StrCat("delta ", path, " refused"));
      LOG(ERROR) << "index " << options_.dir << ": " << *error << " (serving " << from->version()
                 << " with deltas through seq " << from->applied_delta_seq()
                 << "; later deltas wait for a new version)";
      if (delta_errors_ != nullptr) delta_errors_->Increment();
      blocked_seq_ = seq;
      break;
    }
    blocked_seq_ = 0;
    from = *std::move(next);
    created_ms.push_back(delta->created_at_ms);
    if (applied_ != nullptr) applied_->Increment();
    VLOG(1) << "index " << options_.dir << ": applied delta " << seq << " (" << delta->upserts()
            << " upserts, " << delta->removed_keys.size() << " removals)";
  }
  if (freshness_ != nullptr && !created_ms.empty()) {
    // Searchable once published, right after this returns.
    const int64_t now_ms = absl::ToUnixMillis(absl::Now());
    for (int64_t t : created_ms) freshness_->Record(std::max<int64_t>(0, now_ms - t) / 1000.0);
  }
  return from;
}

absl::StatusOr<std::shared_ptr<const IndexSnapshot>> LiveIndex::Apply(
    const IndexSnapshot& from, const ItemDelta& delta) const {
  if (delta.dim != from.dim()) {
    return absl::InvalidArgumentError(
        absl::StrCat("delta dim ", delta.dim, ", the index ", from.dim()));
  }
  const int num_shards = static_cast<int>(from.base().manifest().shards.size());
  std::vector<bool> mine(num_shards, false);
  for (int s : from.base().loaded_shards()) mine[s] = true;
  auto owned = [&](uint64_t key) { return mine[ShardOf(key, num_shards)]; };
  const int dim = delta.dim;
  const FreshSegment& old = *from.fresh_;
  auto fresh = std::make_shared<FreshSegment>();
  auto removed = std::make_shared<absl::flat_hash_set<uint64_t>>(*from.removed_);
  // Start from the old rows, overwrite or append the upserts, drop the removals.
  fresh->keys = old.keys;
  fresh->raw_ids = old.raw_ids;
  fresh->vectors = old.vectors;
  fresh->row_of_key = old.row_of_key;
  for (int64_t i = 0; i < delta.upserts(); ++i) {
    const uint64_t key = delta.upsert_keys[i];
    if (!owned(key)) continue;
    removed->erase(key);
    const float* v = delta.upsert_vectors.data() + i * dim;
    auto [it, added] = fresh->row_of_key.try_emplace(key, fresh->keys.size());
    if (added) {
      fresh->keys.push_back(key);
      fresh->raw_ids.push_back(delta.upsert_raw_ids[i]);
      fresh->vectors.insert(fresh->vectors.end(), v, v + dim);
    } else {
      fresh->raw_ids[it->second] = delta.upsert_raw_ids[i];
      std::copy(v, v + dim, fresh->vectors.begin() + it->second * dim);
    }
  }
  bool dropped = false;
  for (uint64_t key : delta.removed_keys) {
    if (!owned(key)) continue;
    removed->insert(key);
    dropped |= fresh->row_of_key.erase(key) > 0;
  }
  if (dropped) {  // compact: keep the rows whose key is still mapped
    int64_t out = 0;
    for (size_t r = 0; r < fresh->keys.size(); ++r) {
      auto it = fresh->row_of_key.find(fresh->keys[r]);
      if (it == fresh->row_of_key.end() || it->second != static_cast<int64_t>(r)) continue;
      fresh->keys[out] = fresh->keys[r];
      fresh->raw_ids[out] = std::move(fresh->raw_ids[r]);
      std::copy_n(fresh->vectors.begin() + r * dim, dim, fresh->vectors.begin() + out * dim);
      it->second = out++;
    }
    fresh->keys.resize(out);
    fresh->raw_ids.resize(out);
    fresh->vectors.resize(out * dim);
  }
  const int64_t n = static_cast<int64_t>(fresh->keys.size());
  if (n > options_.max_fresh_items ||
      static_cast<int64_t>(removed->size()) > options_.max_tombstones) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "it would leave ", n, " fresh items and ", removed->size(), " removed ones over ",
        from.version(), " (bounds ", options_.max_fresh_items, " and ", options_.max_tombstones,
        "): build and publish a new version (build-index --index_root)"));
  }
  if (n > 0) {
    AnnIndexOptions exact;
    exact.engine = AnnEngine::kExact;
    std::vector<int64_t> ids(fresh->keys.begin(), fresh->keys.end());
    TOWERPS_ASSIGN_OR_RETURN(fresh->index,
                             AnnIndex::Build(exact, fresh->vectors.data(), ids.data(), n, dim));
  }
  auto next = std::make_shared<IndexSnapshot>(from);
  next->fresh_ = std::move(fresh);
  next->removed_ = std::move(removed);
  next->applied_seq_ = delta.seq;
  return std::shared_ptr<const IndexSnapshot>(std::move(next));
}

void LiveIndex::Wake() {
  absl::MutexLock lock(&wake_mu_);
  wake_ = true;
}

void LiveIndex::Stop() {
  {
    absl::MutexLock lock(&wake_mu_);
    stop_ = true;
  }
  if (watcher_.joinable()) watcher_.join();
}

void LiveIndex::WatchLoop() {
  pthread_setname_np(pthread_self(), "index_watch");
  while (true) {
    bool forced = false;
    {
      absl::MutexLock lock(&wake_mu_);
      auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(wake_mu_) { return wake_ || stop_; };
      wake_mu_.AwaitWithTimeout(absl::Condition(&woken),
                                absl::Milliseconds(options_.watch_interval_ms));
      if (stop_) return;
      forced = wake_;
      wake_ = false;
    }
    PollOnce(forced).IgnoreError();  // logged and counted inside
  }
}

}  // namespace towerps::index
