#include "index/item_delta.h"

#include <cmath>
#include <limits>

#include "common/file_util.h"
#include "common/test_dir.h"
#include "gtest/gtest.h"
#include "index/index_root.h"

namespace towerps::index {
namespace {

ItemDelta SampleDelta() {
  ItemDelta d;
  d.dim = 3;
  d.seq = 7;
  d.model_step = 42;
  d.created_at_ms = 1700000000123;
  d.base_version = "v-2";
  d.upsert_keys = {11, 12};
  d.upsert_raw_ids = {"a", "bb"};
  d.upsert_vectors = {1, 0, 0, 0, 1, 0};
  d.removed_keys = {13};
  return d;
}

TEST(ItemDeltaTest, RoundTrip) {
  auto bytes = SerializeItemDelta(SampleDelta());
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  auto back = ParseItemDelta(*bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->dim, 3);
  EXPECT_EQ(back->seq, 7u);
  EXPECT_EQ(back->model_step, 42);
  EXPECT_EQ(back->created_at_ms, 1700000000123);
  EXPECT_EQ(back->base_version, "v-2");
  EXPECT_EQ(back->upsert_keys, SampleDelta().upsert_keys);
  EXPECT_EQ(back->upsert_raw_ids, SampleDelta().upsert_raw_ids);
  EXPECT_EQ(back->upsert_vectors, SampleDelta().upsert_vectors);
  EXPECT_EQ(back->removed_keys, SampleDelta().removed_keys);
}

TEST(ItemDeltaTest, RefusesEveryTruncationAndFlippedByte) {
  auto bytes = SerializeItemDelta(SampleDelta());
  ASSERT_TRUE(bytes.ok());
  for (size_t n = 0; n < bytes->size(); ++n) {
    EXPECT_FALSE(ParseItemDelta(absl::string_view(*bytes).substr(0, n)).ok()) << n;
  }
  for (size_t i = 0; i < bytes->size(); ++i) {
    std::string bad = *bytes;
    bad[i] ^= 0x20;
    EXPECT_FALSE(ParseItemDelta(bad).ok()) << i;
  }
  EXPECT_FALSE(ParseItemDelta(*bytes + "x").ok());
}

TEST(ItemDeltaTest, RefusesBrokenRules) {
  auto bad = [](auto edit) {
    ItemDelta d = SampleDelta();
    edit(&d);
    return SerializeItemDelta(d).status();
  };
  EXPECT_FALSE(bad([](ItemDelta* d) { d->upsert_keys[1] = 11; }).ok());            // repeated
  EXPECT_FALSE(bad([](ItemDelta* d) { d->removed_keys[0] = 11; }).ok());           // both
  EXPECT_FALSE(bad([](ItemDelta* d) { d->upsert_keys[0] = ~uint64_t{0}; }).ok());  // id -1
  EXPECT_FALSE(bad([](ItemDelta* d) {
                 d->upsert_vectors[2] = std::numeric_limits<float>::quiet_NaN();
               }).ok());
  EXPECT_FALSE(bad([](ItemDelta* d) { d->upsert_vectors.pop_back(); }).ok());
  EXPECT_FALSE(bad([](ItemDelta* d) { d->seq = 0; }).ok());
  EXPECT_FALSE(bad([](ItemDelta* d) { d->base_version.clear(); }).ok());
  EXPECT_FALSE(bad([](ItemDelta* d) { d->upsert_raw_ids[0].assign(5000, 'x'); }).ok());
}

TEST(ItemDeltaTest, FilesAndNames) {
  const std::string root = FreshTestDir("item_delta_files", true);
  EXPECT_TRUE(ListItemDeltas(root)->empty());
  ItemDelta d = SampleDelta();
  ASSERT_TRUE(WriteItemDelta(root, d).ok());
  d.seq = 3;
  ASSERT_TRUE(WriteItemDelta(root, d).ok());
  EXPECT_EQ(WriteItemDelta(root, d).code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(WriteFileAtomically(root + "/deltas/delta-00000009.tmp.1", "x").ok());
  ASSERT_TRUE(WriteFileAtomically(root + "/deltas/notes", "x").ok());
  EXPECT_EQ(*ListItemDeltas(root), (std::vector<uint64_t>{3, 7}));
  EXPECT_EQ(ItemDeltaPath(root, 12), root + "/deltas/delta-00000012");
  EXPECT_EQ(ItemDeltaSeqOfName("delta-00000012"), 12);
  EXPECT_EQ(ItemDeltaSeqOfName("delta-0000012"), -1);
  EXPECT_EQ(ItemDeltaSeqOfName("delta-0000001x"), -1);
  EXPECT_EQ(VersionNumberOfName("v-12"), 12);
  EXPECT_EQ(VersionNumberOfName("v-0"), -1);
  EXPECT_EQ(VersionNumberOfName("v-01"), -1);
  EXPECT_EQ(VersionNumberOfName("../v-1"), -1);
  ASSERT_TRUE(WriteFileAtomically(root + "/CURRENT", "../etc\n").ok());
  EXPECT_EQ(ReadCurrentVersion(root).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_FALSE(SetCurrentVersion(root, "v-1").ok());  // no such version
}

TEST(ItemDeltaTest, DiffFindsAddedChangedAndRemoved) {
  EmbeddingTable before, now;
  before.side = now.side = data::Side::kItem;
  before.dim = now.dim = 2;
  before.keys = {1, 2, 3};
  before.raw_ids = {"one", "two", "three"};
  before.values = {1, 0, 0, 1, 0.6f, 0.8f};
  now.keys = {2, 3, 4};
  now.raw_ids = {"two", "three", "four"};
  now.values = {0, 1, 0.8f, 0.6f, 1, 0};
  auto d = DiffItemEmbeddings(before, now, 1e-6f);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->upsert_keys, (std::vector<uint64_t>{3, 4}));
  EXPECT_EQ(d->upsert_raw_ids, (std::vector<std::string>{"three", "four"}));
  EXPECT_EQ(d->upsert_vectors, (std::vector<float>{0.8f, 0.6f, 1, 0}));
  EXPECT_EQ(d->removed_keys, (std::vector<uint64_t>{1}));
  now.dim = 1;
  EXPECT_FALSE(DiffItemEmbeddings(before, now, 0).ok());
}

}  // namespace
}  // namespace towerps::index
