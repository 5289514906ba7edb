// The engines behind AnnIndex (faiss-hnsw, hnswlib, exact) through ShardedIndex:
// recall against brute force, per-request efSearch from several threads, the
// MANIFEST engine line, hostile shard bytes, and the shard search pool.
#include <algorithm>
#include <atomic>
#include <random>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_replace.h"
#include "common/file_util.h"
#include "common/test_dir.h"
#include "gtest/gtest.h"
#include "index/ann_index.h"
#include "index/shard_search_pool.h"
#include "index/sharded_index.h"

namespace towerps::index {
namespace {

constexpr int kDim = 32;

// n unit vectors around 64 random centres (closer to trained embeddings than
// i.i.d. Gaussians) with distinct keys (some >= 2^63).
struct Data {
  std::vector<uint64_t> keys;
  std::vector<float> vectors;
};

Data Clustered(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::mt19937_64 centres_rng(99);  // the same centres for items and queries
  std::normal_distribution<float> normal;
  std::vector<float> centres(64 * kDim);
  for (float& c : centres) c = normal(centres_rng);
  Data data;
  absl::flat_hash_set<uint64_t> seen;
  while (static_cast<int64_t>(data.keys.size()) < n) {
    const uint64_t key = rng();
    if (key != ~uint64_t{0} && seen.insert(key).second) data.keys.push_back(key);
  }
  data.vectors.resize(n * kDim);
  for (int64_t i = 0; i < n; ++i) {
    const float* centre = centres.data() + (rng() % 64) * kDim;
    float norm = 0;
    for (int c = 0; c < kDim; ++c) {
      const float v = centre[c] + 0.5f * normal(rng);
      data.vectors[i * kDim + c] = v;
      norm += v * v;
    }
    for (int c = 0; c < kDim; ++c) data.vectors[i * kDim + c] /= std::sqrt(norm);
  }
  return data;
}

std::vector<Hit> BruteForce(const Data& data, const float* query, int k) {
  std::vector<std::vector<Hit>> all(1);
  for (size_t i = 0; i < data.keys.size(); ++i) {
    float s = 0;
    for (int c = 0; c < kDim; ++c) s += query[c] * data.vectors[i * kDim + c];
    all[0].push_back({data.keys[i], s});
  }
  return MergeHits(all, k);
}

IndexBuildOptions Options(AnnEngine engine, int shards = 4) {
  IndexBuildOptions options;
  options.shards = shards;
  options.threads = 2;
  options.ann.engine = engine;
  options.ann.hnsw_m = 16;
  options.ann.ef_construction = 100;
  return options;
}

std::unique_ptr<ShardedIndex> BuildAndLoad(const Data& data, const IndexBuildOptions& options,
                                           const std::string& name) {
  const std::string dir = FreshTestDir(name);
  auto built = BuildShardedIndex(options, data.keys, data.vectors.data(), kDim, 7, dir);
  EXPECT_TRUE(built.ok()) << built.status();
  auto loaded = ShardedIndex::Load(dir);
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  return loaded.ok() ? *std::move(loaded) : nullptr;
}

class EngineTest : public ::testing::TestWithParam<AnnEngine> {};

TEST_P(EngineTest, RecallAgainstBruteForceAndManifestRoundTrip) {
  const AnnEngine engine = GetParam();
  Data data = Clustered(6000, 1);
  const std::string dir = FreshTestDir(absl::StrReplaceAll(
      std::string("recall_") + std::string(AnnEngineName(engine)), {{"-", "_"}}));
  auto built = BuildShardedIndex(Options(engine), data.keys, data.vectors.data(), kDim, 7, dir);
  ASSERT_TRUE(built.ok()) << built.status();
  EXPECT_EQ(built->engine, engine);
  auto text = ReadFileToString(dir + "/MANIFEST");
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find(absl::StrCat("\nengine ", AnnEngineName(engine), "\n")), std::string::npos);
  auto index = ShardedIndex::Load(dir);
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ((*index)->manifest().engine, engine);
  EXPECT_EQ((*index)->manifest().ToString(), *text);

  Data queries = Clustered(200, 2);
  double found = 0;
  for (int q = 0; q < 200; ++q) {
    const float* query = queries.vectors.data() + q * kDim;
    auto hits = (*index)->Search(query, 10, 128, {});
    ASSERT_TRUE(hits.ok()) << hits.status();
    ASSERT_EQ(hits->size(), 10u);
    const auto truth = BruteForce(data, query, 10);
    for (const Hit& t : truth) {
      for (const Hit& h : *hits) {
        if (h.key != t.key) continue;
        found += 1;
        EXPECT_NEAR(h.score, t.score, 1e-5);
      }
    }
    for (size_t j = 1; j < hits->size(); ++j) EXPECT_GE((*hits)[j - 1].score, (*hits)[j].score);
  }
  const double recall = found / 2000;
  if (engine == AnnEngine::kExact) {
    EXPECT_EQ(recall, 1.0);
  } else {
    EXPECT_GE(recall, 0.95) << AnnEngineName(engine) << " recall@10 at efSearch 128";
  }
}

// Searches with different efSearch values from several threads at once give what
// the same searches give one at a time (no shared beam width, no lock).
TEST_P(EngineTest, PerRequestEfFromSeveralThreadsMatchesSerial) {
  const AnnEngine engine = GetParam();
  Data data = Clustered(4000, 3);
  auto index = BuildAndLoad(
      data, Options(engine, 2),
      absl::StrReplaceAll(std::string("ef_") + std::string(AnnEngineName(engine)), {{"-", "_"}}));
  ASSERT_NE(index, nullptr);
  Data queries = Clustered(60, 4);
  const std::vector<int> efs = {10, 24, 64, 200};
  // serial[e][q]: the keys for efs[e] and query q.
  std::vector<std::vector<std::vector<uint64_t>>> serial(efs.size());
  for (size_t e = 0; e < efs.size(); ++e) {
    for (int q = 0; q < 60; ++q) {
      auto hits = index->Search(queries.vectors.data() + q * kDim, 10, efs[e], {});
      ASSERT_TRUE(hits.ok());
      std::vector<uint64_t> keys;
      for (const Hit& h : *hits) keys.push_back(h.key);
      serial[e].push_back(keys);
    }
  }
  // The beam width is honoured: a narrow beam misses some of what a wide one finds.
  int differ = 0;
  for (int q = 0; q < 60; ++q) differ += serial[0][q] != serial[3][q];
  if (engine == AnnEngine::kExact) {
    EXPECT_EQ(differ, 0);
  } else {
    EXPECT_GT(differ, 0) << "efSearch 10 and 200 gave the same results for every query";
  }
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 3; ++round) {
        for (int q = 0; q < 60; ++q) {
          const size_t e = (t + q + round) % efs.size();  // threads interleave ef values
          auto hits = index->Search(queries.vectors.data() + q * kDim, 10, efs[e], {});
          std::vector<uint64_t> keys;
          if (hits.ok()) {
            for (const Hit& h : *hits) keys.push_back(h.key);
          }
          if (keys != serial[e][q]) ++mismatches;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(mismatches.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(
    Engines, EngineTest,
    ::testing::Values(AnnEngine::kFaissHnsw, AnnEngine::kHnswlib, AnnEngine::kExact),
    [](const auto& info) {
      return absl::StrReplaceAll(std::string(AnnEngineName(info.param)), {{"-", "_"}});
    });

TEST(EngineChoiceTest, AutoPicksExactForSmallShardsAndHnswlibAbove) {
  Data data = Clustered(2000, 5);
  IndexBuildOptions options = Options(AnnEngine::kAuto);
  options.ann.exact_max_items = 1000;
  auto small = BuildShardedIndex(options, data.keys, data.vectors.data(), kDim, 0,
                                 FreshTestDir("auto_small"));
  ASSERT_TRUE(small.ok()) << small.status();
  EXPECT_EQ(small->engine, AnnEngine::kExact);
  EXPECT_EQ(small->shards[0].file, "shard-00000.flat");
  options.shards = 1;
  auto large = BuildShardedIndex(options, data.keys, data.vectors.data(), kDim, 0,
                                 FreshTestDir("auto_large"));
  ASSERT_TRUE(large.ok()) << large.status();
  EXPECT_EQ(large->engine, AnnEngine::kHnswlib);
  EXPECT_EQ(large->shards[0].file, "shard-00000.hnsw");
  EXPECT_EQ(ParseAnnEngine("faiss-hnsw").value(), AnnEngine::kFaissHnsw);
  EXPECT_FALSE(ParseAnnEngine("annoy").ok());
  options.ann.factory = "Flat";  // a factory string is Faiss's
  EXPECT_FALSE(options.Validate().ok());
}

// An index written before the engine line existed reads as faiss-hnsw.
TEST(EngineChoiceTest, ManifestWithoutEngineLineIsFaiss) {
  Data data = Clustered(500, 6);
  const std::string dir = FreshTestDir("old_manifest");
  auto built = BuildShardedIndex(Options(AnnEngine::kFaissHnsw, 2), data.keys, data.vectors.data(),
                                 kDim, 0, dir);
  ASSERT_TRUE(built.ok());
  const std::string old_text =
      absl::StrReplaceAll(built->ToString(), {{"engine faiss-hnsw\n", ""}});
  ASSERT_EQ(old_text.find("engine"), std::string::npos);
  ASSERT_TRUE(WriteFileAtomically(dir + "/MANIFEST", old_text).ok());
  auto index = ShardedIndex::Load(dir);
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ((*index)->manifest().engine, AnnEngine::kFaissHnsw);
  auto hits = (*index)->Search(data.vectors.data(), 5, 32, {});
  ASSERT_TRUE(hits.ok());
  EXPECT_EQ((*hits)[0].key, data.keys[0]);
  for (const char* bad : {"engine\n", "engine annoy\n", "engine auto\n", "engine exact x\n"}) {
    EXPECT_FALSE(IndexManifest::Parse(old_text + bad).ok()) << bad;
  }
}

TEST(EngineChoiceTest, CorruptedHnswlibShardIsRefused) {
  Data data = Clustered(1500, 7);
  const std::string dir = FreshTestDir("corrupt_hnsw");
  auto built = BuildShardedIndex(Options(AnnEngine::kHnswlib, 2), data.keys, data.vectors.data(),
                                 kDim, 0, dir);
  ASSERT_TRUE(built.ok());
  const std::string path = dir + "/" + built->shards[1].file;
  auto bytes = ReadFileToString(path);
  ASSERT_TRUE(bytes.ok());
  std::string flipped = *bytes;
  flipped[flipped.size() / 2] ^= 0x5a;
  ASSERT_TRUE(WriteFileAtomically(path, flipped).ok());
  auto changed = ShardedIndex::Load(dir);
  EXPECT_EQ(changed.status().code(), absl::StatusCode::kDataLoss) << changed.status();

  // Behind a matching CRC (a hostile MANIFEST), the reader itself refuses bad
  // bytes: every truncation, and a neighbour past the end.
  for (size_t cut = 0; cut < bytes->size(); cut += 1 + cut / 3) {
    EXPECT_EQ(AnnIndex::Deserialize(bytes->substr(0, cut), AnnEngine::kHnswlib).status().code(),
              absl::StatusCode::kDataLoss)
        << cut;
  }
  // Header: 8 magic + dim, M, efC (u32) + n (u64) + level (i32) + entry (u32) = 36;
  // element 0: id (8), vector, level (4), layer-0 count (4), then its first link.
  std::string bad_link = *bytes;
  const size_t link = 36 + 8 + kDim * 4 + 4 + 4;
  const uint32_t past_end = static_cast<uint32_t>(built->shards[1].count);
  std::memcpy(bad_link.data() + link, &past_end, 4);
  auto refused = AnnIndex::Deserialize(bad_link, AnnEngine::kHnswlib);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kDataLoss) << refused.status();
  auto good = AnnIndex::Deserialize(*bytes, AnnEngine::kHnswlib);
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ((*good)->size(), built->shards[1].count);
  EXPECT_EQ(AnnIndex::Deserialize(*bytes, AnnEngine::kExact).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(ShardSearchPoolTest, EveryTaskRunsOnceFromConcurrentCallers) {
  ShardSearchPool pool(3);
  std::vector<std::thread> callers;
  std::atomic<int> wrong{0};
  for (int c = 0; c < 4; ++c) {
    callers.emplace_back([&] {
      for (int round = 0; round < 200; ++round) {
        std::vector<std::atomic<int>> runs(7);
        pool.ParallelFor(7, [&](int i) { ++runs[i]; });
        for (auto& r : runs) wrong += r.load() != 1;
      }
    });
  }
  for (auto& caller : callers) caller.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(ShardSearchPoolTest, ParallelSearchEqualsShardByShard) {
  Data data = Clustered(3000, 8);
  const std::string dir = FreshTestDir("pool_index");
  ASSERT_TRUE(BuildShardedIndex(Options(AnnEngine::kHnswlib, 4), data.keys, data.vectors.data(),
                                kDim, 0, dir)
                  .ok());
  ShardedIndexOptions serial_options;
  serial_options.search_threads = 1;
  ShardedIndexOptions parallel_options;
  parallel_options.search_threads = 4;
  auto serial = ShardedIndex::Load(dir, {}, serial_options);
  auto parallel = ShardedIndex::Load(dir, {}, parallel_options);
  ASSERT_TRUE(serial.ok() && parallel.ok());
  Data queries = Clustered(40, 9);
  for (int q = 0; q < 40; ++q) {
    const float* query = queries.vectors.data() + q * kDim;
    const std::vector<uint64_t> exclude = {data.keys[q]};
    auto a = (*serial)->Search(query, 10, 48, exclude);
    auto b = (*parallel)->Search(query, 10, 48, exclude);
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_EQ(a->size(), b->size());
    for (size_t j = 0; j < a->size(); ++j) EXPECT_EQ((*a)[j].key, (*b)[j].key);
  }
  parallel_options.search_threads = -1;
  EXPECT_EQ(ShardedIndex::Load(dir, {}, parallel_options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace towerps::index
