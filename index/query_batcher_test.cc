// ShardedIndex::SearchBatch against per-query Search on every engine, and the
// QueryBatcher under concurrent callers.
#include "index/query_batcher.h"

#include <atomic>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/test_dir.h"
#include "gtest/gtest.h"
#include "index/index_test_data.h"
#include "index/sharded_index.h"

namespace towerps::index {
namespace {

constexpr int kDim = 16;

// 4,000 items in 3 shards (~1,333 each: more than one 1,024-row sgemm block of the
// exact engine), every 10th item a copy of the one before (equal scores: the tie
// rule is exercised).
std::unique_ptr<ShardedIndex> BuildIndex(AnnEngine engine, const std::string& name,
                                         int search_threads, Data* data_out = nullptr) {
  Data data = RandomData(4000, kDim, 11);
  for (size_t i = 10; i < data.keys.size(); i += 10) {
    std::copy_n(data.vectors.begin() + (i - 1) * kDim, kDim, data.vectors.begin() + i * kDim);
  }
  const std::string dir = FreshTestDir(name);
  IndexBuildOptions options;
  options.shards = 3;
  options.threads = 2;
  options.ann.engine = engine;
  options.ann.hnsw_m = 16;
  options.ann.ef_construction = 64;
  auto built = BuildShardedIndex(options, data.keys, data.vectors.data(), kDim, 1, dir);
  EXPECT_TRUE(built.ok()) << built.status();
  ShardedIndexOptions load_options;
  load_options.search_threads = search_threads;
  auto loaded = ShardedIndex::Load(dir, {}, load_options);
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  if (data_out != nullptr) *data_out = std::move(data);
  return loaded.ok() ? *std::move(loaded) : nullptr;
}

// Queries with varied k, efSearch and exclusions (some of them keys the query's
// own best hits, some absent from the index).
struct QuerySet {
  Data vectors;
  std::vector<std::vector<uint64_t>> exclude;
  std::vector<BatchQuery> queries;
};

QuerySet MakeQueries(const ShardedIndex& index, const Data& data, int n, uint64_t seed) {
  QuerySet set;
  set.vectors = RandomData(n, kDim, seed);
  // Some queries are items' own vectors (their duplicates tie at the top).
  for (int q = 0; q < n; q += 4) {
    std::copy_n(data.vectors.begin() + (q * 37 % 4000) * kDim, kDim,
                set.vectors.vectors.begin() + q * kDim);
  }
  set.exclude.resize(n);
  std::mt19937_64 rng(seed);
  for (int q = 0; q < n; ++q) {
    const float* v = set.vectors.vectors.data() + q * kDim;
    if (q % 3 == 1) {
      auto best = index.Search(v, 5, 64, {});
      EXPECT_TRUE(best.ok());
      for (const Hit& h : *best) set.exclude[q].push_back(h.key);
      set.exclude[q].push_back(rng());  // not in the index
    }
    const int ks[] = {1, 10, 37, 100};
    const int efs[] = {0, 16, 64};
    set.queries.push_back({v, ks[q % 4], efs[q % 3], set.exclude[q]});
  }
  return set;
}

void ExpectSameHits(const absl::StatusOr<std::vector<Hit>>& got,
                    const absl::StatusOr<std::vector<Hit>>& want, const std::string& what) {
  ASSERT_EQ(got.ok(), want.ok()) << what;
  if (!got.ok()) {
    EXPECT_EQ(got.status(), want.status()) << what;
    return;
  }
  ASSERT_EQ(got->size(), want->size()) << what;
  for (size_t j = 0; j < got->size(); ++j) {
    EXPECT_EQ((*got)[j].key, (*want)[j].key) << what << " rank " << j;
    EXPECT_EQ((*got)[j].score, (*want)[j].score) << what << " rank " << j;
  }
}

TEST(SearchBatchTest, EqualsPerQuerySearchOnEveryEngine) {
  for (AnnEngine engine : {AnnEngine::kExact, AnnEngine::kHnswlib, AnnEngine::kFaissHnsw}) {
    for (int threads : {1, 3}) {
      const std::string name =
          absl::StrCat("batch_", AnnEngineName(engine), "_", threads);
      Data data;
      auto index = BuildIndex(engine, name, threads, &data);
      ASSERT_NE(index, nullptr);
      QuerySet set = MakeQueries(*index, data, 64, 5);
      set.queries[7].k = 0;  // an invalid query fails alone
      for (size_t size : {size_t{1}, size_t{2}, size_t{64}}) {
        for (size_t start = 0; start < set.queries.size(); start += size) {
          const size_t n = std::min(size, set.queries.size() - start);
          auto answers = index->SearchBatch(absl::MakeConstSpan(set.queries).subspan(start, n));
          ASSERT_EQ(answers.size(), n);
          for (size_t i = 0; i < n; ++i) {
            const BatchQuery& q = set.queries[start + i];
            const std::string what = absl::StrCat(name, " batch ", size, " query ", start + i);
            ExpectSameHits(answers[i], index->Search(q.vector, q.k, q.ef_search, q.exclude), what);
            if (answers[i].ok()) {
              for (const Hit& h : *answers[i]) {
                EXPECT_EQ(std::count(q.exclude.begin(), q.exclude.end(), h.key), 0) << what;
              }
            }
          }
        }
      }
      EXPECT_FALSE(index->SearchBatch({&set.queries[7], 1})[0].ok());
    }
  }
}

TEST(SearchBatchTest, EmptyBatch) {
  auto index = BuildIndex(AnnEngine::kExact, "batch_empty", 2);
  ASSERT_NE(index, nullptr);
  EXPECT_TRUE(index->SearchBatch({}).empty());
}

TEST(QueryBatcherTest, IdleCallersGetBatchesOfOne) {
  Data data;
  auto index = BuildIndex(AnnEngine::kExact, "batcher_idle", 2, &data);
  ASSERT_NE(index, nullptr);
  QuerySet set = MakeQueries(*index, data, 20, 6);
  QueryBatcher batcher({});
  for (const BatchQuery& q : set.queries) {
    ExpectSameHits(batcher.Search(*index, q), index->Search(q.vector, q.k, q.ef_search, q.exclude),
                   "idle");
  }
  const QueryBatcher::Stats stats = batcher.stats();
  EXPECT_EQ(stats.batches, 20);
  EXPECT_EQ(stats.queries, 20);
  EXPECT_EQ(stats.largest, 1);
}

// Concurrent callers on two indexes (exact and hnswlib) through one batcher: every
// caller gets exactly its own query's answer.
TEST(QueryBatcherTest, ConcurrentCallersGetTheirOwnAnswers) {
  Data exact_data, hnsw_data;
  auto exact = BuildIndex(AnnEngine::kExact, "batcher_exact", 2, &exact_data);
  auto hnsw = BuildIndex(AnnEngine::kHnswlib, "batcher_hnsw", 2, &hnsw_data);
  ASSERT_NE(exact, nullptr);
  ASSERT_NE(hnsw, nullptr);
  const ShardedIndex* indexes[] = {exact.get(), hnsw.get()};
  QuerySet sets[] = {MakeQueries(*exact, exact_data, 96, 7), MakeQueries(*hnsw, hnsw_data, 96, 8)};
  std::vector<absl::StatusOr<std::vector<Hit>>> want[2];
  for (int i = 0; i < 2; ++i) {
    for (const BatchQuery& q : sets[i].queries) {
      want[i].push_back(indexes[i]->Search(q.vector, q.k, q.ef_search, q.exclude));
    }
  }
  for (int max_in_flight : {1, 2}) {
    QueryBatcher batcher({.max_batch = 8, .max_in_flight = max_in_flight});
    constexpr int kThreads = 8, kRounds = 3;
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int r = 0; r < kRounds; ++r) {
          for (size_t q = t; q < 96; q += kThreads) {
            const int i = (t + r) % 2;
            auto got = batcher.Search(*indexes[i], sets[i].queries[q]);
            const auto& expected = want[i][q];
            bool same = got.ok() && expected.ok() && got->size() == expected->size();
            for (size_t j = 0; same && j < got->size(); ++j) {
              same = (*got)[j].key == (*expected)[j].key && (*got)[j].score == (*expected)[j].score;
            }
            if (!same) ++wrong;
          }
        }
      });
    }
    for (auto& thread : threads) thread.join();
    EXPECT_EQ(wrong.load(), 0);
    const QueryBatcher::Stats stats = batcher.stats();
    EXPECT_EQ(stats.queries, 96 * kRounds);
    EXPECT_LE(stats.largest, 8);
    RecordProperty(absl::StrCat("largest_batch_in_flight", max_in_flight), stats.largest);
  }
}

TEST(QueryBatcherTest, OptionsAreValidated) {
  EXPECT_FALSE(QueryBatcherOptions{.max_batch = 0}.Validate().ok());
  EXPECT_FALSE(QueryBatcherOptions{.max_in_flight = 0}.Validate().ok());
  EXPECT_TRUE(QueryBatcherOptions{}.Validate().ok());
}

}  // namespace
}  // namespace towerps::index
