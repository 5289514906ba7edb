#include "index/live_index.h"

#include <chrono>
#include <cmath>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/random_vectors.h"
#include "common/test_dir.h"
#include "gtest/gtest.h"
#include "index/index_root.h"

namespace towerps::index {
namespace {

constexpr int kDim = 8;
constexpr int kShards = 3;

std::vector<float> UnitRows(int n, uint64_t seed) { return RandomUnitRows(n, kDim, seed); }

// Keys first + 0 .. first + n - 1 with random vectors, built as <root>/<version>.
void BuildVersion(const std::string& root, const std::string& version, uint64_t first, int n,
                  uint64_t seed) {
  std::vector<uint64_t> keys(n);
  for (int i = 0; i < n; ++i) keys[i] = first + i;
  IndexBuildOptions options;
  options.shards = kShards;
  options.ann.engine = AnnEngine::kExact;
  auto manifest = BuildShardedIndex(options, keys, UnitRows(n, seed).data(), kDim, 1,
                                    absl::StrCat(root, "/", version));
  ASSERT_TRUE(manifest.ok()) << manifest.status();
}

ItemDelta Delta(uint64_t seq, const std::string& version) {
  ItemDelta d;
  d.dim = kDim;
  d.seq = seq;
  d.base_version = version;
  d.created_at_ms = 1;
  return d;
}

void Upsert(ItemDelta* d, uint64_t key, const float* v) {
  d->upsert_keys.push_back(key);
  d->upsert_raw_ids.push_back(absl::StrCat("item", key));
  d->upsert_vectors.insert(d->upsert_vectors.end(), v, v + kDim);
}

class LiveIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = FreshTestDir("live_index_test", true);
    BuildVersion(root_, "v-1", 1000, 200, 1);
    ASSERT_TRUE(SetCurrentVersion(root_, "v-1").ok());
  }
  std::unique_ptr<LiveIndex> Open(LiveIndexOptions options = {}) {
    options.dir = root_;
    if (options.watch_interval_ms == 1000) options.watch_interval_ms = 0;
    auto live = LiveIndex::Open(options, &metrics_);
    EXPECT_TRUE(live.ok()) << live.status();
    return live.ok() ? *std::move(live) : nullptr;
  }
  std::vector<Hit> Search(const LiveIndex& live, const float* q, int k = 10) {
    auto hits = live.Current()->Search(q, k, 64, {});
    EXPECT_TRUE(hits.ok()) << hits.status();
    return hits.ok() ? *hits : std::vector<Hit>{};
  }
  std::string root_;
  MetricsRegistry metrics_;
};

TEST_F(LiveIndexTest, AddedChangedAndRemovedItems) {
  auto live = Open();
  ASSERT_NE(live, nullptr);
  EXPECT_EQ(live->Current()->version_number(), 1);
  const std::vector<float> fresh = UnitRows(3, 99);
  const std::vector<float> base = UnitRows(200, 1);
  ItemDelta d = Delta(1, "v-1");
  Upsert(&d, 5000, fresh.data());         // new
  Upsert(&d, 1007, fresh.data() + kDim);  // changed: base row 7 gets a new vector
  d.removed_keys = {1003};                // removed
  ASSERT_TRUE(WriteItemDelta(root_, d).ok());
  ASSERT_TRUE(live->Poll().ok());
  auto snapshot = live->Current();
  EXPECT_EQ(snapshot->applied_delta_seq(), 1u);
  EXPECT_EQ(snapshot->fresh_items(), 2);
  EXPECT_EQ(*snapshot->FreshRawId(5000), "item5000");
  EXPECT_EQ(Search(*live, fresh.data())[0].key, 5000u);
  EXPECT_EQ(Search(*live, fresh.data() + kDim)[0].key, 1007u);
  // Queried by their old vectors, the removed item never comes back and the changed
  // one only with its new vector's score.
  for (int row : {3, 7}) {
    for (const Hit& hit : Search(*live, base.data() + row * kDim, 200)) {
      EXPECT_NE(hit.key, 1003u);
      if (hit.key == 1007u) {
        float s = 0;
        for (int c = 0; c < kDim; ++c) s += base[row * kDim + c] * fresh[kDim + c];
        EXPECT_NEAR(hit.score, s, 1e-5);
      }
    }
  }
  // Removing a fresh item drops it; upserting a removed one brings it back.
  ItemDelta d2 = Delta(2, "v-1");
  d2.removed_keys = {5000};
  Upsert(&d2, 1003, base.data() + 3 * kDim);
  ASSERT_TRUE(WriteItemDelta(root_, d2).ok());
  ASSERT_TRUE(live->Poll().ok());
  for (const Hit& hit : Search(*live, fresh.data(), 300)) EXPECT_NE(hit.key, 5000u);
  EXPECT_EQ(Search(*live, base.data() + 3 * kDim)[0].key, 1003u);
  EXPECT_EQ(metrics_.GetCounter("towerps_serve_deltas_applied_total")->value(), 2);
  EXPECT_EQ(metrics_.GetGauge("towerps_serve_fresh_items")->value(), 2);  // 1007, 1003
}

TEST_F(LiveIndexTest, HostileDeltaIsRefusedWholeAndBlocksLaterOnes) {
  auto live = Open();
  ASSERT_NE(live, nullptr);
  const std::vector<float> v = UnitRows(1, 5);
  ItemDelta good = Delta(1, "v-1");
  Upsert(&good, 6000, v.data());
  auto bytes = SerializeItemDelta(good);
  ASSERT_TRUE(bytes.ok());
  std::string bad = *bytes;
  bad[bad.size() / 2] ^= 1;
  ASSERT_TRUE(CreateDirectories(root_ + "/deltas").ok());
  ASSERT_TRUE(WriteFileAtomically(ItemDeltaPath(root_, 1), bad).ok());
  good.seq = 2;
  ASSERT_TRUE(WriteItemDelta(root_, good).ok());
  EXPECT_EQ(live->Poll().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(live->Current()->applied_delta_seq(), 0u);
  EXPECT_EQ(live->Current()->fresh_items(), 0);
  EXPECT_EQ(metrics_.GetCounter("towerps_serve_delta_errors_total")->value(), 1);
  // A wrong dim, a wrong seq in the file: refused too.
  ItemDelta wrong = Delta(1, "v-1");
  wrong.dim = kDim + 1;
  wrong.upsert_keys = {7};
  wrong.upsert_raw_ids = {"x"};
  wrong.upsert_vectors.assign(kDim + 1, 0.1f);
  ASSERT_TRUE(WriteFileAtomically(ItemDeltaPath(root_, 1), *SerializeItemDelta(wrong)).ok());
  EXPECT_EQ(live->Poll().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(WriteFileAtomically(ItemDeltaPath(root_, 1), *bytes).ok());
  // Fixed in place: Poll retries it and then applies seq 2 too.
  EXPECT_TRUE(live->Poll().ok());
  EXPECT_EQ(live->Current()->applied_delta_seq(), 2u);
  EXPECT_EQ(Search(*live, v.data())[0].key, 6000u);
}

TEST_F(LiveIndexTest, BoundsRefuseADeltaAndNameTheWayOut) {
  LiveIndexOptions options;
  options.max_fresh_items = 2;
  auto live = Open(options);
  ASSERT_NE(live, nullptr);
  const std::vector<float> v = UnitRows(3, 6);
  ItemDelta d = Delta(1, "v-1");
  for (int i = 0; i < 3; ++i) Upsert(&d, 7000 + i, v.data() + i * kDim);
  ASSERT_TRUE(WriteItemDelta(root_, d).ok());
  absl::Status status = live->Poll();
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(status.message().find("new version"), std::string::npos) << status;
  EXPECT_EQ(live->Current()->fresh_items(), 0);
}

TEST_F(LiveIndexTest, NewVersionSwapsWholeAndOldSnapshotsStayValid) {
  auto live = Open();
  ASSERT_NE(live, nullptr);
  const std::vector<float> q = UnitRows(1, 8);
  auto old = live->Current();
  ItemDelta d = Delta(1, "v-1");
  Upsert(&d, 9000, q.data());
  ASSERT_TRUE(WriteItemDelta(root_, d).ok());
  BuildVersion(root_, "v-2", 2000, 150, 2);
  ItemDelta d2 = Delta(2, "v-2");  // written before the flip: waits for v-2
  Upsert(&d2, 9001, q.data());
  ASSERT_TRUE(WriteItemDelta(root_, d2).ok());
  ASSERT_TRUE(live->Poll().ok());
  EXPECT_EQ(live->Current()->fresh_items(), 1);  // seq 2 skipped: for v-2
  EXPECT_EQ(LatestVersionNumber(root_), 2);
  ASSERT_TRUE(SetCurrentVersion(root_, "v-2").ok());
  ASSERT_TRUE(live->Poll().ok());
  auto now = live->Current();
  EXPECT_EQ(now->version(), "v-2");
  // v-2's deltas after the flip apply (seq 2 was skipped under v-1 but is re-read on
  // the swap, since the applied seq restarts with the version).
  EXPECT_EQ(now->fresh_items(), 1);
  EXPECT_EQ(Search(*live, q.data())[0].key, 9001u);
  for (const Hit& hit : Search(*live, q.data(), 160)) {
    EXPECT_TRUE(hit.key >= 2000 || hit.key == 9001) << hit.key;
  }
  // The old snapshot still answers from v-1.
  auto hits = old->Search(q.data(), 5, 64, {});
  ASSERT_TRUE(hits.ok());
  for (const Hit& hit : *hits) EXPECT_TRUE(hit.key >= 1000 && hit.key < 1200) << hit.key;
  EXPECT_EQ(metrics_.GetGauge("towerps_serve_index_version")->value(), 2);
  // A broken version keeps the old one.
  ASSERT_TRUE(CreateDirectories(root_ + "/v-3").ok());
  ASSERT_TRUE(WriteFileAtomically(root_ + "/v-3/MANIFEST", "towerps-index 1\ngarbage\n").ok());
  ASSERT_TRUE(WriteFileAtomically(root_ + "/CURRENT", "v-3\n").ok());
  EXPECT_FALSE(live->Poll().ok());
  EXPECT_EQ(live->Current()->version(), "v-2");
  EXPECT_EQ(metrics_.GetCounter("towerps_serve_index_load_errors_total")->value(), 1);
}

TEST_F(LiveIndexTest, ShardServerKeepsOnlyItsShardsKeys) {
  LiveIndexOptions options;
  options.shards = {1};
  auto live = Open(options);
  ASSERT_NE(live, nullptr);
  const std::vector<float> v = UnitRows(40, 9);
  ItemDelta d = Delta(1, "v-1");
  int mine = 0;
  for (int i = 0; i < 40; ++i) {
    Upsert(&d, 8000 + i, v.data() + i * kDim);
    mine += ShardOf(8000 + i, kShards) == 1;
  }
  ASSERT_TRUE(WriteItemDelta(root_, d).ok());
  ASSERT_TRUE(live->Poll().ok());
  EXPECT_EQ(live->Current()->fresh_items(), mine);
  for (int i = 0; i < 40; ++i) {
    EXPECT_EQ(live->Current()->FreshRawId(8000 + i) != nullptr, ShardOf(8000 + i, kShards) == 1);
  }
}

TEST_F(LiveIndexTest, WatcherAppliesDeltasAndWakes) {
  LiveIndexOptions options;
  options.watch_interval_ms = 3600 * 1000;  // only Wake() makes it look
  options.dir = root_;
  auto live = LiveIndex::Open(options, &metrics_);
  ASSERT_TRUE(live.ok()) << live.status();
  const std::vector<float> v = UnitRows(1, 10);
  ItemDelta d = Delta(1, "v-1");
  Upsert(&d, 9100, v.data());
  ASSERT_TRUE(WriteItemDelta(root_, d).ok());
  (*live)->Wake();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while ((*live)->Current()->applied_delta_seq() != 1 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ((*live)->Current()->applied_delta_seq(), 1u);
  (*live)->Stop();
  (*live)->Stop();
}

TEST_F(LiveIndexTest, PlainDirIsStatic) {
  LiveIndexOptions options;
  options.dir = root_ + "/v-1";
  auto live = LiveIndex::Open(options, nullptr);
  ASSERT_TRUE(live.ok()) << live.status();
  EXPECT_FALSE((*live)->is_root());
  EXPECT_TRUE((*live)->Poll().ok());
  EXPECT_EQ((*live)->Current()->version(), "");
  EXPECT_EQ((*live)->Current()->items(), 200);
}

}  // namespace
}  // namespace towerps::index
