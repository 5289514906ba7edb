#include "index/sharded_index.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>

#include "absl/container/flat_hash_set.h"
#include "common/file_util.h"
#include "common/test_dir.h"
#include "gtest/gtest.h"
#include "index/ann_index.h"
#include "index/index_test_data.h"

namespace towerps::index {
namespace {

// Brute-force top-k keys (descending score, ties by lower key), skipping `exclude`.
std::vector<Hit> BruteForce(const Data& data, const float* query, int k,
                            const std::vector<uint64_t>& exclude) {
  std::vector<std::vector<Hit>> all(1);
  for (size_t i = 0; i < data.keys.size(); ++i) {
    if (std::find(exclude.begin(), exclude.end(), data.keys[i]) != exclude.end()) continue;
    float s = 0;
    for (int c = 0; c < data.dim; ++c) s += query[c] * data.vectors[i * data.dim + c];
    all[0].push_back({data.keys[i], s});
  }
  return MergeHits(all, k);
}

IndexBuildOptions Options(int shards, const std::string& factory = "") {
  IndexBuildOptions options;
  options.shards = shards;
  options.threads = 2;
  options.ann.hnsw_m = 16;
  options.ann.ef_construction = 100;
  options.ann.factory = factory;
  return options;
}

TEST(ShardedIndexTest, PartitionCoversEveryItemExactlyOnce) {
  Data data = RandomData(5000, 4, 1);
  for (int shards : {1, 3, 4, 7}) {
    auto rows = PartitionByShard(data.keys, shards);
    ASSERT_EQ(rows.size(), static_cast<size_t>(shards));
    std::vector<int> hits(data.keys.size(), 0);
    for (int s = 0; s < shards; ++s) {
      EXPECT_GT(rows[s].size(), 5000u / shards / 2) << "shard " << s << " is badly balanced";
      for (int64_t row : rows[s]) {
        ++hits[row];
        EXPECT_EQ(ShardOf(data.keys[row], shards), static_cast<uint32_t>(s));
      }
    }
    for (int h : hits) ASSERT_EQ(h, 1);
  }
  // And the built index holds every item once: counts add up, and each item is
  // found in its shard by an exact search for its own vector.
  const std::string dir = FreshTestDir("partition_index");
  auto manifest = BuildShardedIndex(Options(4, "Flat"), data.keys, data.vectors.data(), 4, 7, dir);
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  int64_t total = 0;
  for (const auto& shard : manifest->shards) total += shard.count;
  EXPECT_EQ(total, 5000);
  EXPECT_EQ(manifest->items, 5000);
}

TEST(ShardedIndexTest, SaveLoadRoundTripAndHnswRecall) {
  Data data = RandomData(4000, 16, 2);
  const std::string dir = FreshTestDir("roundtrip_index");
  IndexBuildOptions options = Options(4);
  options.ann = AnnIndexOptions();  // the defaults: HNSW32, efConstruction 200
  auto built = BuildShardedIndex(options, data.keys, data.vectors.data(), 16, 123, dir);
  ASSERT_TRUE(built.ok()) << built.status();
  EXPECT_EQ(built->factory, "HNSW32,Flat");
  auto loaded = ShardedIndex::Load(dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->manifest().model_step, 123);
  EXPECT_EQ((*loaded)->manifest().ToString(), built->ToString());
  EXPECT_EQ((*loaded)->dim(), 16);
  Data queries = RandomData(200, 16, 3);
  double found = 0;
  for (int q = 0; q < 200; ++q) {
    const float* query = queries.vectors.data() + q * 16;
    auto hits = (*loaded)->Search(query, 10, 128, {});
    ASSERT_TRUE(hits.ok()) << hits.status();
    ASSERT_EQ(hits->size(), 10u);
    auto truth = BruteForce(data, query, 10, {});
    for (const Hit& t : truth) {
      found += std::any_of(hits->begin(), hits->end(), [&](const Hit& h) { return h.key == t.key; });
    }
    for (size_t j = 1; j < hits->size(); ++j) EXPECT_GE((*hits)[j - 1].score, (*hits)[j].score);
  }
  EXPECT_GE(found / 2000, 0.95) << "HNSW recall@10 at efSearch 128";
}

TEST(ShardedIndexTest, FanOutMergeEqualsSingleIndexSearch) {
  Data data = RandomData(3000, 16, 4);
  const std::string one = FreshTestDir("single_index"), four = FreshTestDir("four_shards");
  ASSERT_TRUE(BuildShardedIndex(Options(1, "Flat"), data.keys, data.vectors.data(), 16, 0, one).ok());
  ASSERT_TRUE(BuildShardedIndex(Options(4, "Flat"), data.keys, data.vectors.data(), 16, 0, four).ok());
  auto single = ShardedIndex::Load(one);
  ASSERT_TRUE(single.ok()) << single.status();
  // The four shards loaded as separate indexes, merged by hand (what a router does).
  std::vector<std::unique_ptr<ShardedIndex>> shards;
  for (int s = 0; s < 4; ++s) {
    auto shard = ShardedIndex::Load(four, {s});
    ASSERT_TRUE(shard.ok()) << shard.status();
    shards.push_back(*std::move(shard));
  }
  Data queries = RandomData(50, 16, 5);
  for (int q = 0; q < 50; ++q) {
    const float* query = queries.vectors.data() + q * 16;
    std::vector<uint64_t> exclude = {data.keys[q], data.keys[q + 100], 12345};
    auto expected = (*single)->Search(query, 20, 0, exclude);
    ASSERT_TRUE(expected.ok());
    std::vector<std::vector<Hit>> lists;
    for (auto& shard : shards) {
      auto hits = shard->Search(query, 20, 0, exclude);
      ASSERT_TRUE(hits.ok());
      lists.push_back(*hits);
    }
    auto merged = MergeHits(lists, 20);
    auto truth = BruteForce(data, query, 20, exclude);
    ASSERT_EQ(merged.size(), 20u);
    for (int j = 0; j < 20; ++j) {
      EXPECT_EQ(merged[j].key, (*expected)[j].key) << "query " << q << " rank " << j;
      EXPECT_EQ(merged[j].key, truth[j].key);
      EXPECT_NEAR(merged[j].score, truth[j].score, 1e-5);
    }
  }
}

TEST(ShardedIndexTest, ExclusionsAreNeverReturnedAndKIsFilled) {
  Data data = RandomData(500, 8, 6);
  const std::string dir = FreshTestDir("exclude_index");
  ASSERT_TRUE(BuildShardedIndex(Options(2), data.keys, data.vectors.data(), 8, 0, dir).ok());
  auto index = ShardedIndex::Load(dir);
  ASSERT_TRUE(index.ok());
  const float* query = data.vectors.data();  // item 0's own vector: it ranks first
  auto best = BruteForce(data, query, 40, {});
  std::vector<uint64_t> exclude;
  for (int j = 0; j < 30; ++j) exclude.push_back(best[j].key);
  auto hits = (*index)->Search(query, 10, 64, exclude);
  ASSERT_TRUE(hits.ok());
  ASSERT_EQ(hits->size(), 10u);
  for (const Hit& h : *hits) {
    EXPECT_EQ(std::find(exclude.begin(), exclude.end(), h.key), exclude.end());
  }
  EXPECT_EQ((*hits)[0].key, best[30].key);
  // Asking for more than the index holds returns at most what there is (HNSW may
  // not reach every node), never padding.
  auto all = (*index)->Search(query, 1000, 0, exclude);
  ASSERT_TRUE(all.ok());
  EXPECT_LE(all->size(), 470u);
  EXPECT_GE(all->size(), 10u);
}

TEST(ShardedIndexTest, ChangedOrMissingShardIsRefused) {
  Data data = RandomData(800, 8, 7);
  const std::string dir = FreshTestDir("corrupt_index");
  auto manifest = BuildShardedIndex(Options(3), data.keys, data.vectors.data(), 8, 0, dir);
  ASSERT_TRUE(manifest.ok());
  ASSERT_TRUE(ShardedIndex::Load(dir).ok());
  const std::string shard1 = dir + "/" + manifest->shards[1].file;
  auto bytes = ReadFileToString(shard1);
  ASSERT_TRUE(bytes.ok());
  std::string flipped = *bytes;
  flipped[flipped.size() / 2] ^= 0x5a;
  ASSERT_TRUE(WriteFileAtomically(shard1, flipped).ok());
  auto changed = ShardedIndex::Load(dir);
  ASSERT_FALSE(changed.ok());
  EXPECT_EQ(changed.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(changed.status().message().find("shard 1"), absl::string_view::npos)
      << changed.status();
  // Loading only the intact shards still works.
  EXPECT_TRUE(ShardedIndex::Load(dir, {0, 2}).ok());
  ASSERT_TRUE(WriteFileAtomically(shard1, bytes->substr(0, bytes->size() - 7)).ok());
  EXPECT_EQ(ShardedIndex::Load(dir).status().code(), absl::StatusCode::kDataLoss);
  ASSERT_TRUE(RemoveAll(shard1).ok());
  auto missing = ShardedIndex::Load(dir);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound) << missing.status();
  EXPECT_EQ(ShardedIndex::Load(dir, {3}).status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(WriteFileAtomically(dir + "/MANIFEST", "towerps-index 1\ndim x\n").ok());
  EXPECT_EQ(ShardedIndex::Load(dir).status().code(), absl::StatusCode::kDataLoss);
}

// A shard line with fewer than six fields is malformed (its file name was read past
// the end of the fields; found by fuzz/index_files_fuzzer.cc).
TEST(ShardedIndexTest, ShortShardLineIsDataLoss) {
  const std::string head =
      "towerps-index 1\ndim 2\nshards 1\nitems 6\nmodel_step 9\nfactory HNSW4,Flat\n"
      "ef_construction 8\n";
  ASSERT_TRUE(IndexManifest::Parse(head + "shard 0 shard-00000.faiss 4 651 1234046272\n").ok());
  for (const char* line : {"shard \n", "shard 0\n", "shard 0 x 4 651\n"}) {
    EXPECT_EQ(IndexManifest::Parse(head + line).status().code(), absl::StatusCode::kDataLoss)
        << line;
  }
}

TEST(AnnIndexTest, FaissErrorsBecomeStatus) {
  Data data = RandomData(100, 8, 8);
  std::vector<int64_t> ids(data.keys.begin(), data.keys.end());
  AnnIndexOptions options;
  options.factory = "NoSuchIndex42";
  auto bad = AnnIndex::Build(options, data.vectors.data(), ids.data(), 100, 8);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << bad.status();
  options.factory = "";
  options.hnsw_m = 1;
  EXPECT_EQ(AnnIndex::Build(options, data.vectors.data(), ids.data(), 100, 8).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(AnnIndex::Deserialize("not a faiss index").status().code(),
            absl::StatusCode::kDataLoss);
  ids[5] = -1;
  options.hnsw_m = 8;
  EXPECT_EQ(AnnIndex::Build(options, data.vectors.data(), ids.data(), 100, 8).status().code(),
            absl::StatusCode::kInvalidArgument);
  // An IVF factory string trains before adding.
  ids[5] = 5;
  options.factory = "IVF4,Flat";
  auto ivf = AnnIndex::Build(options, data.vectors.data(), ids.data(), 100, 8);
  ASSERT_TRUE(ivf.ok()) << ivf.status();
  EXPECT_EQ((*ivf)->size(), 100);
}

}  // namespace
}  // namespace towerps::index
