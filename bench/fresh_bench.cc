// bench/run.sh fresh: how fast an exported item becomes retrievable without a
// rebuild (index/live_index.h). Over an index root (v-1: 20k items of dim 64,
// 4 hnswlib shards; --quick: 4k, exact), each round publishes one item delta the
// way `export --items_only` does (100 new items, 10 removals, created-at = now) and
// then searches the live index until the first new item is top-1 for its own
// vector: freshness = that moment - the delta's created-at. Measured with the
// watcher's poll interval at 100 ms and 1000 ms (deltas written at random phases)
// and with a Wake() right after writing (what SIGHUP does): the apply cost alone.
// Also: Poll() time for a 1,000-item delta and query latency with 0 / 10k fresh items.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/bench_util.h"
#include "common/file_util.h"
#include "index/index_root.h"
#include "index/item_delta.h"
#include "index/live_index.h"

namespace towerps::bench {
namespace {

constexpr int kDim = 64;
using Clock = std::chrono::steady_clock;

std::vector<float> UnitRows(int64_t n, std::mt19937_64* rng) {
  std::normal_distribution<float> normal;
  std::vector<float> out(n * kDim);
  for (int64_t i = 0; i < n; ++i) {
    float norm = 0;
    for (int c = 0; c < kDim; ++c) norm += (out[i * kDim + c] = normal(*rng)) * out[i * kDim + c];
    for (int c = 0; c < kDim; ++c) out[i * kDim + c] /= std::sqrt(norm);
  }
  return out;
}

double Quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))];
}

struct Root {
  std::string dir;
  uint64_t next_key = 1;
  std::mt19937_64 rng{7};
};

// A delta of `adds` new items and `removals` removed base keys; returns the first
// new item's key and vector.
std::pair<uint64_t, std::vector<float>> PublishDelta(Root* root, int adds, int removals,
                                                     int64_t base_items) {
  index::ItemDelta d;
  d.dim = kDim;
  d.upsert_vectors = UnitRows(adds, &root->rng);
  for (int i = 0; i < adds; ++i) {
    d.upsert_keys.push_back(root->next_key++);
    d.upsert_raw_ids.push_back(absl::StrCat("fresh", d.upsert_keys.back()));
  }
  for (int i = 0; i < removals; ++i) {
    d.removed_keys.push_back(1000000000 + root->rng() % base_items);
  }
  std::sort(d.removed_keys.begin(), d.removed_keys.end());
  d.removed_keys.erase(std::unique(d.removed_keys.begin(), d.removed_keys.end()),
                       d.removed_keys.end());
  std::vector<float> first(d.upsert_vectors.begin(), d.upsert_vectors.begin() + kDim);
  const uint64_t key = d.upsert_keys[0];
  auto seq = index::PublishItemDelta(root->dir, std::move(d));
  if (!seq.ok()) {
    std::fprintf(stderr, "fresh: %s\n", seq.status().ToString().c_str());
    std::exit(1);
  }
  return {key, first};
}

// Seconds from the delta's creation to its first item being top-1.
std::vector<double> Freshness(Root* root, index::LiveIndex* live, int rounds, int64_t period_ms,
                              bool wake, int64_t base_items) {
  std::vector<double> out;
  std::uniform_int_distribution<int64_t> phase(0, std::max<int64_t>(1, period_ms));
  for (int r = 0; r < rounds; ++r) {
    if (!wake) std::this_thread::sleep_for(std::chrono::milliseconds(phase(root->rng)));
    const absl::Time created = absl::Now();
    auto [key, vector] = PublishDelta(root, 100, 10, base_items);
    if (wake) live->Wake();
    while (true) {
      auto hits = live->Current()->Search(vector.data(), 1, 64, {});
      if (hits.ok() && !hits->empty() && (*hits)[0].key == key) break;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    out.push_back(absl::ToDoubleSeconds(absl::Now() - created));
  }
  return out;
}

}  // namespace

int Main(int argc, char** argv) {
  const bool quick = QuickMode(argc, argv);
  const int64_t items = quick ? 4000 : 20000;
  const int rounds = quick ? 5 : 20;
  Root root;
  root.dir =
      absl::StrCat(std::filesystem::temp_directory_path().string(), "/fresh_bench_", ::getpid());
  (void)RemoveAll(root.dir);
  std::vector<uint64_t> keys(items);
  for (int64_t i = 0; i < items; ++i) keys[i] = 1000000000 + i;
  index::IndexBuildOptions build;
  build.shards = 4;
  build.ann.engine = index::AnnEngine::kAuto;
  build.threads = 2;
  auto manifest = index::BuildShardedIndex(build, keys, UnitRows(items, &root.rng).data(), kDim, 1,
                                           root.dir + "/v-1");
  if (!manifest.ok() || !index::SetCurrentVersion(root.dir, "v-1").ok()) {
    std::fprintf(stderr, "fresh: cannot build the index\n");
    return 1;
  }
  const std::string engine(index::AnnEngineName(manifest->engine));
  const std::string what = absl::StrCat(items, " items dim ", kDim, ", 4 ", engine, " shards");
  for (int64_t period : {int64_t{100}, int64_t{1000}, int64_t{0}}) {
    if (quick && period == 1000) continue;
    (void)RemoveAll(root.dir + "/deltas");
    index::LiveIndexOptions options;
    options.dir = root.dir;
    options.watch_interval_ms = period > 0 ? period : 3600 * 1000;  // 0: Wake() only
    MetricsRegistry metrics;
    auto live = index::LiveIndex::Open(options, &metrics);
    if (!live.ok()) return 1;
    auto s = Freshness(&root, live->get(), rounds, period, period == 0, items);
    const std::string name =
        period > 0 ? absl::StrCat("poll ", period, " ms") : std::string("wake (SIGHUP)");
    PrintFigure({"fresh", absl::StrCat("freshness p50, ", name, ", ", what), Quantile(s, 0.5) * 1e3,
                 "ms", "", 0});
    PrintFigure({"fresh", absl::StrCat("freshness p99, ", name, ", ", rounds, " deltas"),
                 Quantile(s, 0.99) * 1e3, "ms", "", 0});
  }
  // Cost of a large fresh segment: Poll() of a 1,000-item delta over ~10k fresh
  // items, and query latency with 0 vs 10k fresh items (+ their tombstones).
  (void)RemoveAll(root.dir + "/deltas");
  index::LiveIndexOptions options;
  options.dir = root.dir;
  options.watch_interval_ms = 0;
  auto live = index::LiveIndex::Open(options, nullptr);
  if (!live.ok()) return 1;
  const std::vector<float> queries = UnitRows(200, &root.rng);
  auto query_us = [&] {
    std::vector<double> t;
    for (int i = 0; i < 200; ++i) {
      const auto start = Clock::now();
      DoNotOptimize((*live)->Current()->Search(queries.data() + i * kDim, 10, 64, {}));
      t.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
    }
    return Median(t);
  };
  const double empty_us = query_us();
  std::vector<double> poll_ms;
  for (int i = 0; i < 10; ++i) {
    PublishDelta(&root, 1000, 100, items);
    const auto start = Clock::now();
    if (!(*live)->Poll().ok()) return 1;
    poll_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  PrintFigure({"fresh", "apply a 1000-item delta (fresh segment 1k..10k items)", Median(poll_ms),
               "ms", "", 0});
  PrintFigure({"fresh", "query p50 k=10 with 10k fresh items + 1k tombstones", query_us(), "us",
               "no fresh items", empty_us});
  (void)RemoveAll(root.dir);
  return 0;
}

}  // namespace towerps::bench

int main(int argc, char** argv) { return towerps::bench::Main(argc, argv); }
