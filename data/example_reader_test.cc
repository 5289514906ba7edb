// ExampleReader: partitions are disjoint and complete, shuffling is seeded, resume is exact.
#include <algorithm>
#include <string>
#include <tuple>
#include <vector>

#include "data/example_reader.h"
#include "data/generator.h"
#include "data/prepare.h"
#include "data/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace towerps::data {
namespace {

using testing::TempDir;
using Id = std::tuple<uint64_t, uint64_t, int64_t>;

class ExampleReaderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    GenerateOptions g;
    g.output_dir = dir_->Sub("log");
    g.users = 200;
    g.items = 100;
    g.interactions = 5000;
    g.content_dim = 0;
    ASSERT_TRUE(Generate(g).ok());
    PrepareOptions p;
    p.source.input = g.output_dir;
    p.output_dir = dir_->Sub("ds");
    p.num_shards = 5;
    ASSERT_TRUE(Prepare(p).ok());
  }
  static void TearDownTestSuite() { delete dir_; }

  static ExampleReaderOptions Options() {
    ExampleReaderOptions o;
    o.dataset_dir = dir_->Sub("ds");
    o.shuffle_buffer = 64;
    return o;
  }
  // Reads up to `limit` examples (all when negative).
  static std::vector<Id> Read(ExampleReader* reader, int64_t limit = -1) {
    std::vector<Id> out;
    Example e;
    while (limit < 0 || static_cast<int64_t>(out.size()) < limit) {
      absl::StatusOr<bool> more = reader->Next(&e);
      EXPECT_TRUE(more.ok()) << more.status();
      if (!more.ok() || !*more) break;
      out.emplace_back(e.user_id, e.item_id, e.timestamp);
    }
    return out;
  }
  static std::vector<Id> ReadAll(const ExampleReaderOptions& o) {
    auto reader = ExampleReader::Open(o);
    EXPECT_TRUE(reader.ok()) << reader.status();
    return reader.ok() ? Read(reader->get()) : std::vector<Id>{};
  }

  static TempDir* dir_;
};

TempDir* ExampleReaderTest::dir_ = nullptr;

TEST_F(ExampleReaderTest, PartitionsAreDisjointAndComplete) {
  std::vector<Id> all = ReadAll(Options());
  ASSERT_GT(all.size(), 1000u);
  std::sort(all.begin(), all.end());
  for (auto by : {ExampleReaderOptions::PartitionBy::kShards,
                  ExampleReaderOptions::PartitionBy::kRecords}) {
    std::vector<Id> united;
    for (int p = 0; p < 3; ++p) {
      ExampleReaderOptions o = Options();
      o.partition_by = by;
      o.num_partitions = 3;
      o.partition_index = p;
      o.shuffle = true;
      std::vector<Id> part = ReadAll(o);
      EXPECT_GT(part.size(), all.size() / 6);
      united.insert(united.end(), part.begin(), part.end());
    }
    std::sort(united.begin(), united.end());
    EXPECT_EQ(united, all);  // same multiset: every example exactly once
  }
}

TEST_F(ExampleReaderTest, ShuffleIsSeededAndEpochsRepeat) {
  ExampleReaderOptions o = Options();
  o.shuffle = true;
  o.epochs = 2;
  std::vector<Id> a = ReadAll(o), b = ReadAll(o);
  EXPECT_EQ(a, b);
  o.seed = 2;
  std::vector<Id> c = ReadAll(o);
  EXPECT_NE(a, c);
  std::vector<Id> plain = ReadAll(Options());
  ASSERT_EQ(a.size(), 2 * plain.size());
  EXPECT_NE(std::vector<Id>(a.begin(), a.begin() + plain.size()), plain);
  std::vector<Id> first(a.begin(), a.begin() + plain.size());
  std::vector<Id> second(a.begin() + plain.size(), a.end());
  EXPECT_NE(first, second);  // a new order each epoch
  std::sort(first.begin(), first.end());
  std::sort(second.begin(), second.end());
  std::sort(plain.begin(), plain.end());
  EXPECT_EQ(first, plain);
  EXPECT_EQ(second, plain);
}

TEST_F(ExampleReaderTest, ResumesExactlyFromAnyPosition) {
  ExampleReaderOptions o = Options();
  o.shuffle = true;
  o.epochs = 2;
  o.partition_by = ExampleReaderOptions::PartitionBy::kRecords;
  o.num_partitions = 2;
  o.partition_index = 1;
  std::vector<Id> whole = ReadAll(o);
  for (int64_t cut : {0, 1, 63, 64, 65, 500, static_cast<int>(whole.size() / 2),
                      static_cast<int>(whole.size()) - 1, static_cast<int>(whole.size())}) {
    auto reader = ExampleReader::Open(o);
    ASSERT_TRUE(reader.ok());
    std::vector<Id> head = Read(reader->get(), cut);
    ASSERT_EQ(head.size(), static_cast<size_t>(cut));
    // Through text, as a hand-over would send it.
    absl::StatusOr<ReaderPosition> pos = ReaderPosition::Parse((*reader)->position().ToString());
    ASSERT_TRUE(pos.ok());
    EXPECT_EQ(*pos, (*reader)->position());
    auto resumed = ExampleReader::Open(o, *pos);
    ASSERT_TRUE(resumed.ok()) << resumed.status();
    std::vector<Id> tail = Read(resumed->get());
    head.insert(head.end(), tail.begin(), tail.end());
    ASSERT_EQ(head, whole) << "cut at " << cut;
  }
  EXPECT_FALSE(ReaderPosition::Parse("1:2:3").ok());
  ReaderPosition far;
  far.shard_cursor = 99;
  EXPECT_EQ(ExampleReader::Open(o, far).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ExampleReaderTest, BatchLaysOutColumns) {
  auto reader = ExampleReader::Open(Options());
  ASSERT_TRUE(reader.ok());
  const DatasetMeta& meta = (*reader)->meta();
  ExampleBatch batch(meta.schema);
  std::vector<Example> examples(3);
  for (Example& e : examples) {
    ASSERT_TRUE(*(*reader)->Next(&e));
    batch.Add(e);
  }
  ASSERT_EQ(batch.size(), 3u);
  const int dim = meta.schema.item.dense_dim();
  for (int n = 0; n < 3; ++n) {
    EXPECT_EQ(batch.item_ids[n], examples[n].item_id);
    const auto& hist = batch.user.sparse[kHistorySlot];
    std::vector<uint64_t> got(hist.values.begin() + hist.offsets[n],
                              hist.values.begin() + hist.offsets[n + 1]);
    absl::Span<const uint64_t> want = examples[n].user.slot(kHistorySlot);
    EXPECT_EQ(got, std::vector<uint64_t>(want.begin(), want.end()));
    for (int d = 0; d < dim; ++d) EXPECT_EQ(batch.item.dense[n * dim + d], examples[n].item.dense[d]);
  }
  batch.Clear();
  EXPECT_EQ(batch.size(), 0u);
  EXPECT_EQ(batch.user.sparse[0].offsets.size(), 1u);
}

TEST_F(ExampleReaderTest, EmptyPartitionEndsEvenWithEndlessEpochs) {
  ExampleReaderOptions o = Options();
  o.epochs = 0;
  o.num_partitions = 7;  // 5 shards: partitions 5 and 6 get none
  o.partition_index = 6;
  EXPECT_TRUE(ReadAll(o).empty());
  o.partition_index = 0;
  auto reader = ExampleReader::Open(o);
  ASSERT_TRUE(reader.ok());
  std::vector<Id> many = Read(reader->get(), 10000);  // loops over epochs
  EXPECT_EQ(many.size(), 10000u);
}

TEST(ExampleReaderOptionsTest, Validate) {
  ExampleReaderOptions o;
  EXPECT_FALSE(o.Validate().ok());
  o.dataset_dir = "/x";
  EXPECT_TRUE(o.Validate().ok());
  o.partition_index = 1;
  EXPECT_FALSE(o.Validate().ok());
  o.num_partitions = 2;
  EXPECT_TRUE(o.Validate().ok());
  o.shuffle_buffer = 0;
  EXPECT_FALSE(o.Validate().ok());
}

}  // namespace
}  // namespace towerps::data
