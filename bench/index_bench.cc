// bench/run.sh index: the index engines (index/ann_index.h) over 1M synthetic
// L2-normalised 128-d item vectors (--quick: 100k), all measured in the same run:
// 4 shards and one index on Faiss HNSW and on hnswlib, 4 exact shards, and exact
// brute force (index/exact_topk.h) as the ground truth. Vectors: a mixture of 1024
// Gaussian clusters (centre + noise, then normalised), queries drawn the same way -
// closer to trained embeddings than i.i.d. Gaussians, which no graph index searches
// well. Every index: M 32, efConstruction 40 (build-index defaults to 200, ~5x
// slower to build), built with both cores.
//   build_s_<config>: build seconds (4 shards: 2 at a time, 1 thread each).
//   qps_ef<E>_<config>: 2 client threads, one query at a time each (a ShardedIndex
//     searches a query's shards on its pool: caller + 1 "shard_search" thread),
//     beside one Faiss HNSW index at the same efSearch; recall10_ef<E>_<config>,
//     p50_us_ef<E>_<config>, p99_us_ef<E>_<config> from the same run.
//   crossover_n<N>: p50 microseconds of exact search over N vectors beside hnswlib
//     at efSearch 64 (one thread): where exact wins (AnnIndexOptions::exact_max_items).
//   exact_topk_qps: ExactTopK top-10 in one batch (2 threads, blocked sgemm).
//   <config>_serial: the same shards searched one after another on the caller
//     (search_threads 1); 1client_*: one client thread (latency with idle cores).
// --only=PREFIX keeps the configs whose name starts with PREFIX (e.g. hnswlib).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "bench/bench_util.h"
#include "bench/synthetic_vectors.h"
#include "common/file_util.h"
#include "common/hash.h"
#include "glog/logging.h"
#include "index/exact_topk.h"
#include "index/sharded_index.h"

namespace towerps::bench {
namespace {

constexpr int kDim = 128;
constexpr int kClusters = 1024;
constexpr int kK = 10;
constexpr int kClientThreads = 2;

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

struct SearchFigures {
  double qps = 0;
  double recall = 0;
  double p50_us = 0;
  double p99_us = 0;
};

// `threads` clients, each one query at a time; recall@10 against `truth`.
SearchFigures Measure(const index::ShardedIndex& index, const std::vector<float>& queries,
                      int64_t n, int ef, const std::vector<uint64_t>& keys,
                      const index::TopK& truth, int threads) {
  std::vector<std::vector<index::Hit>> results(n);
  std::vector<double> latency_us(n);
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> clients;
  for (int t = 0; t < threads; ++t) {
    clients.emplace_back([&, t] {
      for (int64_t q = t; q < n; q += threads) {
        auto query_start = std::chrono::steady_clock::now();
        auto hits = index.Search(queries.data() + q * kDim, kK, ef, {});
        latency_us[q] = Seconds(query_start) * 1e6;
        CHECK(hits.ok()) << hits.status();
        results[q] = std::move(*hits);
      }
    });
  }
  for (auto& client : clients) client.join();
  SearchFigures figures;
  figures.qps = n / Seconds(start);
  double found = 0;
  for (int64_t q = 0; q < n; ++q) {
    absl::flat_hash_set<uint64_t> want;
    for (int32_t row : truth.Ids(q)) want.insert(keys[row]);
    for (const index::Hit& hit : results[q]) found += want.contains(hit.key);
  }
  figures.recall = found / (n * kK);
  std::sort(latency_us.begin(), latency_us.end());
  figures.p50_us = latency_us[n / 2];
  figures.p99_us = latency_us[std::min<int64_t>(n - 1, n * 99 / 100)];
  return figures;
}

// The better QPS of two runs (the machine is shared), with that run's latencies.
SearchFigures Best(const index::ShardedIndex& index, const std::vector<float>& queries, int64_t n,
                   int ef, const std::vector<uint64_t>& keys, const index::TopK& truth,
                   int threads) {
  SearchFigures a = Measure(index, queries, n, ef, keys, truth, threads);
  SearchFigures b = Measure(index, queries, n, ef, keys, truth, threads);
  return a.qps >= b.qps ? a : b;
}

struct Config {
  std::string name;
  index::AnnEngine engine;
  int shards;
  int search_threads = 0;  // ShardedIndexOptions
};

}  // namespace
}  // namespace towerps::bench

int main(int argc, char** argv) {
  using namespace towerps;
  using namespace towerps::bench;
  google::InitGoogleLogging(argv[0]);
  const bool quick = QuickMode(argc, argv);
  int64_t items = quick ? 100000 : 1000000;
  for (int i = 1; i < argc; ++i) {  // --items=N overrides (for profiling)
    if (std::string(argv[i]).rfind("--items=", 0) == 0) items = std::stoll(argv[i] + 8);
  }
  std::string only;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]).rfind("--only=", 0) == 0) only = argv[i] + 7;
  }
  const int64_t n_queries = 1000;
  const std::string suite = "index";
  const std::string dir = (std::filesystem::temp_directory_path() /
                           ("towerps_index_bench_" + std::to_string(::getpid()))).string();

  const std::vector<float> centres = RandomUnitRows(kClusters, kDim, 7);
  const std::vector<float> vectors = Clustered(items, kDim, centres, 1);
  const std::vector<float> queries = Clustered(n_queries, kDim, centres, 2);
  std::vector<uint64_t> keys(items);
  for (int64_t i = 0; i < items; ++i) keys[i] = Mix64(i + 1);

  // Where exact search beats hnswlib (one thread, p50), on prefixes of the items.
  for (int64_t n : {1000, 2000, 4000, 8000, 16000, 32000}) {
    std::vector<uint64_t> some(keys.begin(), keys.begin() + n);
    index::TopKOptions truth_options;
    auto some_truth =
        index::ExactTopK(queries.data(), 200, vectors.data(), n, kDim, kK, {}, {}, truth_options);
    CHECK(some_truth.ok());
    double us[2];
    int e = 0;
    for (index::AnnEngine engine : {index::AnnEngine::kExact, index::AnnEngine::kHnswlib}) {
      index::IndexBuildOptions options;
      options.shards = 1;
      options.ann.engine = engine;
      options.ann.ef_construction = 40;
      const std::string at = dir + "/crossover";
      CHECK(index::BuildShardedIndex(options, some, vectors.data(), kDim, 0, at).ok());
      auto loaded = index::ShardedIndex::Load(at);
      CHECK(loaded.ok());
      us[e++] = Best(**loaded, queries, 200, 64, some, *some_truth, 1).p50_us;
    }
    PrintFigure(
        {suite, "crossover_n" + std::to_string(n), us[0], "us exact p50", "hnswlib_ef64", us[1]});
  }

  // Exact brute force: the ground truth and the batch peer.
  index::TopKOptions exact_options;
  exact_options.threads = 2;
  auto start = std::chrono::steady_clock::now();
  auto truth = index::ExactTopK(queries.data(), n_queries, vectors.data(), items, kDim, kK, {}, {},
                                exact_options);
  CHECK(truth.ok()) << truth.status();
  PrintFigure({suite, "exact_topk_qps", n_queries / Seconds(start), "queries/s", "", 0});

  std::vector<Config> configs = {
      {"faiss_1", index::AnnEngine::kFaissHnsw, 1},
      {"faiss_4shards", index::AnnEngine::kFaissHnsw, 4},
      {"hnswlib_1", index::AnnEngine::kHnswlib, 1},
      {"hnswlib_4shards", index::AnnEngine::kHnswlib, 4},
      {"hnswlib_4shards_serial", index::AnnEngine::kHnswlib, 4, 1},
      {"exact_4shards", index::AnnEngine::kExact, 4},
  };
  std::erase_if(configs, [&](const Config& c) { return c.name.rfind(only, 0) != 0; });
  std::vector<std::unique_ptr<index::ShardedIndex>> loaded;
  for (const Config& config : configs) {
    if (config.search_threads != 0) {  // the previous config's shards, another pool
      index::ShardedIndexOptions options;
      options.search_threads = config.search_threads;
      auto index = index::ShardedIndex::Load(dir + "/" + configs[loaded.size() - 1].name, {},
                                             options);
      CHECK(index.ok()) << index.status();
      loaded.push_back(std::move(*index));
      continue;
    }
    index::IndexBuildOptions options;
    options.shards = config.shards;
    options.threads = config.shards > 1 ? 2 : 1;
    options.ann.engine = config.engine;
    options.ann.ef_construction = 40;
    const std::string at = dir + "/" + config.name;
    start = std::chrono::steady_clock::now();
    CHECK(index::BuildShardedIndex(options, keys, vectors.data(), kDim, 0, at).ok());
    PrintFigure({suite, "build_s_" + config.name, Seconds(start), "s", "", 0});
    auto index = index::ShardedIndex::Load(at);
    CHECK(index.ok()) << index.status();
    loaded.push_back(std::move(*index));
  }
  for (int ef : {16, 32, 64, 128, 256}) {
    const std::string e = std::to_string(ef);
    SearchFigures peer;
    for (size_t c = 0; c < configs.size(); ++c) {
      if (configs[c].engine == index::AnnEngine::kExact && ef != 16) continue;  // no beam
      const std::string tag = configs[c].engine == index::AnnEngine::kExact
                                  ? configs[c].name
                                  : "ef" + e + "_" + configs[c].name;
      SearchFigures f = Best(*loaded[c], queries, n_queries, ef, keys, *truth, kClientThreads);
      if (c == 0) peer = f;
      const std::string peer_name = configs[0].name + "_ef" + e;
      PrintFigure({suite, "qps_" + tag, f.qps, "queries/s", peer_name, peer.qps});
      PrintFigure({suite, "recall10_" + tag, f.recall, "recall@10", peer_name, peer.recall});
      PrintFigure({suite, "p50_us_" + tag, f.p50_us, "us", "", 0});
      PrintFigure({suite, "p99_us_" + tag, f.p99_us, "us", "", 0});
      if (configs[c].shards > 1 && configs[c].engine != index::AnnEngine::kExact && ef == 64) {
        SearchFigures one = Best(*loaded[c], queries, n_queries, ef, keys, *truth, 1);
        PrintFigure({suite, "1client_p50_us_" + tag, one.p50_us, "us", "", 0});
        PrintFigure({suite, "1client_p99_us_" + tag, one.p99_us, "us", "", 0});
      }
    }
  }
  (void)RemoveAll(dir);
  return 0;
}
