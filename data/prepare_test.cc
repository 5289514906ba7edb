// prepare: leakage, splits, k-core, atomic output, corruption, entity files, meta.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "data/example_reader.h"
#include "data/generator.h"
#include "data/issue_log.h"
#include "data/prepare.h"
#include "data/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace towerps::data {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::ListDir;
using testing::ReadSplit;
using testing::TempDir;
using testing::WriteFile;

GenerateOptions SmallWorld(const std::string& dir) {
  GenerateOptions g;
  g.output_dir = dir;
  g.users = 300;
  g.items = 200;
  g.interactions = 6000;
  g.clusters = 5;
  g.content_dim = 4;
  return g;
}

PrepareOptions PrepareFrom(const std::string& input, const std::string& output) {
  PrepareOptions p;
  p.source.input = input;
  p.output_dir = output;
  p.history_length = 8;
  p.num_shards = 3;
  return p;
}

struct Positive {
  int64_t timestamp;
  uint64_t item;
};

TEST(PrepareTest, HistoryNeverLeaksTheFutureOrTheItemItself) {
  TempDir dir;
  ASSERT_TRUE(Generate(SmallWorld(dir.Sub("log"))).ok());
  absl::StatusOr<PrepareResult> r = Prepare(PrepareFrom(dir.Sub("log"), dir.Sub("ds")));
  ASSERT_TRUE(r.ok()) << r.status();
  // Every positive is an example in exactly one split: together they are the
  // ground truth of each user's positives.
  std::vector<Example> all;
  std::map<std::string, std::vector<Example>> by_split;
  for (const char* split : {"train", "valid", "test"}) {
    by_split[split] = ReadSplit(dir.Sub("ds"), split);
    all.insert(all.end(), by_split[split].begin(), by_split[split].end());
  }
  EXPECT_EQ(all.size(), r->examples[0] + r->examples[1] + r->examples[2]);
  absl::flat_hash_map<uint64_t, std::vector<Positive>> positives;
  for (const Example& e : all) positives[e.user_id].push_back({e.timestamp, e.item_id});
  int64_t with_history = 0;
  for (const Example& e : all) {
    std::vector<Positive> earlier;
    for (const Positive& p : positives[e.user_id]) {
      if (p.timestamp < e.timestamp && p.item != e.item_id) earlier.push_back(p);
    }
    std::stable_sort(earlier.begin(), earlier.end(),
                     [](const Positive& a, const Positive& b) { return a.timestamp < b.timestamp; });
    absl::Span<const uint64_t> history = e.user.slot(kHistorySlot);
    ASSERT_EQ(history.size(), std::min<size_t>(earlier.size(), 8));
    // Exactly the last H earlier items (as a multiset; equal timestamps may reorder).
    std::vector<uint64_t> want, got(history.begin(), history.end());
    for (size_t k = earlier.size() - history.size(); k < earlier.size(); ++k) {
      want.push_back(earlier[k].item);
    }
    std::sort(want.begin(), want.end());
    std::sort(got.begin(), got.end());
    ASSERT_EQ(got, want) << "user " << e.user_id << " at " << e.timestamp;
    for (uint64_t h : history) ASSERT_NE(h, e.item_id);
    with_history += history.empty() ? 0 : 1;
    // Fixed slots and the item side.
    ASSERT_THAT(e.user.slot(kUserIdSlot), ElementsAre(e.user_id));
    ASSERT_THAT(e.item.slot(kItemIdSlot), ElementsAre(e.item_id));
  }
  EXPECT_GT(with_history, static_cast<int64_t>(all.size()) / 2);
  // Leave-last-out: per user, test is the latest positive, valid the one before.
  absl::flat_hash_map<uint64_t, int64_t> last_train, valid_ts, test_ts;
  for (const Example& e : by_split["train"]) {
    last_train[e.user_id] = std::max(last_train[e.user_id], e.timestamp);
  }
  for (const Example& e : by_split["valid"]) {
    ASSERT_FALSE(valid_ts.contains(e.user_id));
    valid_ts[e.user_id] = e.timestamp;
  }
  for (const Example& e : by_split["test"]) {
    ASSERT_FALSE(test_ts.contains(e.user_id));
    test_ts[e.user_id] = e.timestamp;
    ASSERT_LE(last_train[e.user_id], e.timestamp);
    if (valid_ts.contains(e.user_id)) {
      ASSERT_LE(valid_ts[e.user_id], e.timestamp);
    }
  }
  for (const auto& [user, ts] : valid_ts) ASSERT_LE(last_train[user], ts);
}

TEST(PrepareTest, EntityFilesAndMeta) {
  TempDir dir;
  ASSERT_TRUE(Generate(SmallWorld(dir.Sub("log"))).ok());
  absl::StatusOr<PrepareResult> r = Prepare(PrepareFrom(dir.Sub("log"), dir.Sub("ds")));
  ASSERT_TRUE(r.ok()) << r.status();
  absl::StatusOr<DatasetMeta> meta = LoadDatasetMeta(dir.Sub("ds"));
  ASSERT_TRUE(meta.ok()) << meta.status();
  EXPECT_EQ(meta->num_users, r->users);
  EXPECT_EQ(meta->num_examples("train"), r->examples[0]);
  EXPECT_EQ(meta->train_positives, r->examples[0]);
  EXPECT_EQ(meta->schema.user.sparse[kHistorySlot].item_id_space, true);
  EXPECT_EQ(meta->schema.item.SparseSlot("tags"), 4);
  EXPECT_EQ(meta->schema.item.DenseOffset("content"), 1);
  EXPECT_EQ(meta->schema.item.dense_dim(), 5);
  EXPECT_EQ(meta->schema.user.sparse[kUserIdSlot].vocab_size, r->users);
  EXPECT_EQ(meta->schema.user.sparse[2].vocab_size, 12u);  // countries
  // The meta text round-trips.
  absl::StatusOr<DatasetMeta> again = ParseDatasetMeta(SerializeDatasetMeta(*meta));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(SerializeDatasetMeta(*again), SerializeDatasetMeta(*meta));

  // Users: history = last H training positives; items: counts sum to train examples.
  absl::flat_hash_map<uint64_t, std::vector<Example>> train_by_user;
  for (const Example& e : ReadSplit(dir.Sub("ds"), "train")) train_by_user[e.user_id].push_back(e);
  auto users = EntityReader::Open(dir.Sub("ds"), Side::kUser);
  ASSERT_TRUE(users.ok());
  EntityRecord rec;
  uint64_t n = 0;
  while (*(*users)->Next(&rec)) {
    ++n;
    std::vector<Example>& mine = train_by_user[rec.key];
    ASSERT_EQ(rec.train_count, mine.size());
    std::sort(mine.begin(), mine.end(),
              [](const Example& a, const Example& b) { return a.timestamp < b.timestamp; });
    ASSERT_EQ(rec.features.slot(kHistorySlot).size(), std::min<size_t>(mine.size(), 8));
    if (!mine.empty()) {
      std::vector<uint64_t> hist(rec.features.slot(kHistorySlot).begin(),
                                 rec.features.slot(kHistorySlot).end());
      EXPECT_THAT(hist, ::testing::Contains(mine.back().item_id));
    }
    ASSERT_EQ(rec.raw_id[0], 'u');
  }
  EXPECT_EQ(n, r->users);
  auto items = EntityReader::Open(dir.Sub("ds"), Side::kItem);
  ASSERT_TRUE(items.ok());
  uint64_t total = 0;
  while (*(*items)->Next(&rec)) {
    total += rec.train_count;
    ASSERT_EQ(rec.features.dense.size(), 5u);
  }
  EXPECT_EQ(total, r->examples[0]);
  EXPECT_EQ((*items)->size(), r->items);
}

// The 12 ratings log of a tiny hand-made MovieLens-1M directory.
void WriteTinyMl1m(const std::string& dir) {
  WriteFile(dir + "/ratings.dat",
            "1::10::5::100\n1::11::5::200\n1::12::5::300\n"
            "2::10::5::100\n2::11::5::200\n2::13::5::300\n"
            "3::10::5::100\n3::11::2::200\n"
            "4::10::4::150\n4::11::4::250\n4::12::4::350\n4::14::4::450\n");
}

// A line of only spaces is skipped like an empty one (it was read as a line with a
// first token: out of bounds; found by fuzz/example_reader_fuzzer.cc).
TEST(PrepareTest, MetaLineOfOnlySpacesIsSkipped) {
  TempDir dir;
  ASSERT_TRUE(Generate(SmallWorld(dir.Sub("log"))).ok());
  ASSERT_TRUE(Prepare(PrepareFrom(dir.Sub("log"), dir.Sub("ds"))).ok());
  absl::StatusOr<DatasetMeta> meta = LoadDatasetMeta(dir.Sub("ds"));
  ASSERT_TRUE(meta.ok()) << meta.status();
  std::string text = SerializeDatasetMeta(*meta);
  text.insert(text.find('\n') + 1, "   \n \n");
  absl::StatusOr<DatasetMeta> spaced = ParseDatasetMeta(text);
  ASSERT_TRUE(spaced.ok()) << spaced.status();
  EXPECT_EQ(SerializeDatasetMeta(*spaced), SerializeDatasetMeta(*meta));
}

// A malformed meta.txt line is echoed as a bounded excerpt, not whole.
TEST(PrepareTest, MalformedMetaLineIsEchoedAsAnExcerpt) {
  absl::StatusOr<DatasetMeta> meta =
      ParseDatasetMeta("towerps-dataset 1\nnum_users " + std::string(1 << 20, 'x') + "\n");
  ASSERT_FALSE(meta.ok());
  EXPECT_NE(meta.status().message().find("meta.txt:2"), std::string::npos)
      << meta.status().message().substr(0, 200);
  EXPECT_LT(meta.status().message().size(), 1000u) << meta.status().message().substr(0, 200);
}

TEST(PrepareTest, RatingThresholdAndKCore) {
  TempDir dir;
  WriteTinyMl1m(dir.Sub(""));
  PrepareOptions p = PrepareFrom(dir.path(), dir.Sub("ds"));
  p.source.format = "ml-10m";
  p.min_rating = 4;
  p.min_item_interactions = 2;  // drops 13 and 14, then nobody falls below
  p.min_user_interactions = 2;  // user 3 has one positive -> dropped
  absl::StatusOr<PrepareResult> r = Prepare(p);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->not_positive, 1);
  EXPECT_EQ(r->removed_by_kcore, 3);  // 2::13, 4::14, then 3::10
  EXPECT_EQ(r->users, 3u);
  EXPECT_EQ(r->items, 3u);
  // Users 1 and 4 have 3 positives (train, valid, test); user 2 has 2 (train, test).
  EXPECT_THAT(r->examples, ElementsAre(3, 2, 3, 0));
}

TEST(PrepareTest, TimeSplit) {
  TempDir dir;
  WriteTinyMl1m(dir.Sub(""));
  PrepareOptions p = PrepareFrom(dir.path(), dir.Sub("ds"));
  p.split_mode = "time";
  p.valid_cutoff = 200;
  p.test_cutoff = 300;
  absl::StatusOr<PrepareResult> r = Prepare(p);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->examples, ElementsAre(4, 4, 4, 0));
  for (const Example& e : ReadSplit(dir.Sub("ds"), "valid")) {
    EXPECT_GE(e.timestamp, 200);
    EXPECT_LT(e.timestamp, 300);
  }
}

// Cold-start split: a held-out item's positives are all in "cold" and nowhere else,
// not even in a history; the warm positives are still split leave-last-out.
TEST(PrepareTest, ColdItemsAreHeldOutEntirely) {
  TempDir dir;
  ASSERT_TRUE(Generate(SmallWorld(dir.Sub("log"))).ok());
  PrepareOptions options = PrepareFrom(dir.Sub("log"), dir.Sub("ds"));
  options.cold_item_fraction = 0.2;
  absl::StatusOr<PrepareResult> r = Prepare(options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->ToString(), HasSubstr(absl::StrCat(", cold ", r->examples[3], "\n")));
  std::map<std::string, std::vector<Example>> by_split;
  for (const char* split : kSplitNames) by_split[split] = ReadSplit(dir.Sub("ds"), split);
  ASSERT_EQ(by_split["cold"].size(), r->examples[3]);
  absl::flat_hash_map<uint64_t, int> cold_items, warm_items;
  for (const Example& e : by_split["cold"]) ++cold_items[e.item_id];
  for (const char* split : {"train", "valid", "test"}) {
    for (const Example& e : by_split[split]) ++warm_items[e.item_id];
  }
  const double fraction = static_cast<double>(cold_items.size()) /
                          static_cast<double>(cold_items.size() + warm_items.size());
  EXPECT_GT(fraction, 0.1);
  EXPECT_LT(fraction, 0.3);
  for (const auto& [item, count] : cold_items) EXPECT_FALSE(warm_items.contains(item)) << item;
  // No history (of any split's example) names a cold item.
  for (const auto& [split, examples] : by_split) {
    for (const Example& e : examples) {
      for (uint64_t h : e.user.slot(kHistorySlot)) {
        ASSERT_FALSE(cold_items.contains(h)) << split << " history names cold item " << h;
      }
    }
  }
  // Leave-last-out over the warm positives: a user's test positive is not earlier
  // than any of their train positives.
  absl::flat_hash_map<uint64_t, int64_t> last_train;
  for (const Example& e : by_split["train"]) {
    last_train[e.user_id] = std::max(last_train[e.user_id], e.timestamp);
  }
  ASSERT_FALSE(by_split["test"].empty());
  for (const Example& e : by_split["test"]) EXPECT_GE(e.timestamp, last_train[e.user_id]);
  // Without the option there is no cold split.
  options.cold_item_fraction = 0;
  options.output_dir = dir.Sub("warm");
  r = Prepare(options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->examples[3], 0u);
  EXPECT_THAT(ListDir(dir.Sub("warm")), ::testing::Not(::testing::Contains(HasSubstr("cold"))));
  for (double bad : {-0.1, 0.6, std::nan("")}) {
    options.cold_item_fraction = bad;
    EXPECT_EQ(options.Validate().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(PrepareTest, FailedOrInterruptedRunLeavesNothing) {
  TempDir dir;
  ASSERT_TRUE(Generate(SmallWorld(dir.Sub("log"))).ok());
  for (const char* stage : {"read", "write_shards", "write_entities", "write_meta", "commit"}) {
    PrepareHook fail = [&](absl::string_view s) {
      return s == stage ? absl::InternalError("injected") : absl::OkStatus();
    };
    absl::StatusOr<PrepareResult> r = Prepare(PrepareFrom(dir.Sub("log"), dir.Sub("ds")), fail);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal) << stage;
    EXPECT_THAT(ListDir(dir.path()), ElementsAre("log")) << stage;
  }
  std::atomic<bool> cancel{true};
  absl::StatusOr<PrepareResult> r =
      Prepare(PrepareFrom(dir.Sub("log"), dir.Sub("ds")), nullptr, &cancel);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(ListDir(dir.path()), ElementsAre("log"));
  // A temp dir left by a killed run (a pid that does not exist) is cleaned up.
  ASSERT_TRUE(CreateDirectories(dir.Sub("ds.tmp-999999999")).ok());
  ASSERT_TRUE(Prepare(PrepareFrom(dir.Sub("log"), dir.Sub("ds"))).ok());
  EXPECT_THAT(ListDir(dir.path()), ElementsAre("ds", "log"));
}

TEST(PrepareTest, StrictStopsAtFirstMalformedLineAndExistingOutputIsKept) {
  TempDir dir;
  WriteFile(dir.Sub("ratings.dat"), "1::10::5::100\n1::11::5\n1::12::5::300\n");
  PrepareOptions p = PrepareFrom(dir.path(), dir.Sub("ds"));
  p.strict = true;
  absl::StatusOr<PrepareResult> r = Prepare(p);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "ratings.dat:2: wrong column count (expected 4 fields, got 3)");
  EXPECT_FALSE(PathExists(dir.Sub("ds")));
  p.strict = false;
  r = Prepare(p);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->skipped_lines, 1);
  EXPECT_EQ(r->skipped_by_reason.at("wrong column count"), 1);
  EXPECT_THAT(r->ToString(), HasSubstr("ratings.dat:2: wrong column count"));
  // Output exists: refused unless overwrite, which replaces it.
  EXPECT_EQ(Prepare(p).status().code(), absl::StatusCode::kFailedPrecondition);
  p.overwrite = true;
  p.history_length = 1;
  ASSERT_TRUE(Prepare(p).ok());
  EXPECT_EQ(LoadDatasetMeta(dir.Sub("ds"))->history_length, 1);
}

// A huge malformed field is echoed as a bounded excerpt (a 50 MB line once put 52 MB
// into the summary), in the summary and in strict mode's error alike.
TEST(PrepareTest, HugeMalformedLineIsEchoedAsABoundedExcerpt) {
  TempDir dir;
  const std::string huge(8 << 20, 'x');
  WriteFile(dir.Sub("ratings.dat"),
            absl::StrCat("1::10::5::100\n1::11::5::", huge, "\n1::12::5::300\n"));
  PrepareOptions p = PrepareFrom(dir.path(), dir.Sub("ds"));
  absl::StatusOr<PrepareResult> r = Prepare(p);
  ASSERT_TRUE(r.ok()) << r.status().ToString().substr(0, 300);
  EXPECT_EQ(r->skipped_by_reason.at("non-numeric timestamp"), 1);
  const std::string summary = r->ToString();
  EXPECT_LT(summary.size(), 2000u);
  EXPECT_THAT(summary, HasSubstr(absl::StrCat("ratings.dat:2: non-numeric timestamp (",
                                              std::string(kMaxIssueDetailBytes, 'x'),
                                              "... (8388608 bytes))")));
  p.strict = true;
  p.overwrite = true;
  r = Prepare(p);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_LT(r.status().message().size(), 400u);
}

TEST(IssueLogTest, ExcerptKeepsShortTextAndCutsOnUtf8Boundaries) {
  EXPECT_EQ(Excerpt("abc", 3), "abc");
  EXPECT_EQ(Excerpt("abcd", 3), "abc... (4 bytes)");
  // "é" is two bytes; a cut inside it backs off to before it.
  EXPECT_EQ(Excerpt("ab\xc3\xa9z", 3), "ab... (5 bytes)");
  // Invalid UTF-8 (only continuation bytes) still yields a bounded excerpt.
  EXPECT_EQ(Excerpt(std::string(10, '\x80'), 4).size(), std::string("\x80... (10 bytes)").size());
}

TEST(PrepareTest, CorruptShardIsDataLoss) {
  TempDir dir;
  ASSERT_TRUE(Generate(SmallWorld(dir.Sub("log"))).ok());
  ASSERT_TRUE(Prepare(PrepareFrom(dir.Sub("log"), dir.Sub("ds"))).ok());
  const std::string shard = dir.Sub("ds/train-00001-of-00003.tpr");
  std::string bytes = *ReadFileToString(shard);
  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x40;
  WriteFile(shard, flipped);
  ExampleReaderOptions o;
  o.dataset_dir = dir.Sub("ds");
  auto read_all = [&]() -> absl::Status {
    auto reader = ExampleReader::Open(o);
    if (!reader.ok()) return reader.status();
    Example e;
    while (true) {
      absl::StatusOr<bool> more = (*reader)->Next(&e);
      if (!more.ok()) return more.status();
      if (!*more) return absl::OkStatus();
    }
  };
  absl::Status s = read_all();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr("train-00001-of-00003.tpr"));
  WriteFile(shard, bytes.substr(0, bytes.size() - 7));  // truncated
  EXPECT_EQ(read_all().code(), absl::StatusCode::kDataLoss);
  WriteFile(shard, "TPSRECRD but not really a header");
  EXPECT_EQ(read_all().code(), absl::StatusCode::kDataLoss);
  WriteFile(shard, bytes);
  EXPECT_TRUE(read_all().ok());
}

}  // namespace
}  // namespace towerps::data
