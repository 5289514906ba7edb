// Snapshots (full, incremental, corrupted) and streaming export.
#include <cstdio>
#include <map>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/checksum.h"
#include "common/file_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sparse_emb/embedding_table.h"

namespace towerps::sparse_emb {
namespace {

using ::testing::HasSubstr;

class SnapshotTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::TempDir() + "/sparse_emb_snapshot_" +
           testing::UnitTest::GetInstance()->current_test_info()->name();
    ASSERT_TRUE(RemoveAll(dir_).ok());
    ASSERT_TRUE(CreateDirectories(dir_).ok());
  }
  void TearDown() override { (void)RemoveAll(dir_); }

  static TableConfig Config() {
    TableConfig c;
    c.name = "snap";
    c.dim = 8;
    c.num_stripes = 4;
    c.optimizer.kind = OptimizerKind::kAdam;
    c.admission.min_count = 2;
    c.admission.sketch_width = 4096;
    return c;
  }
  static std::unique_ptr<EmbeddingTable> Make(const TableConfig& c = Config()) {
    return EmbeddingTable::Create(c, nullptr).value();
  }
  // Pulls and pushes keys [first, first + n) twice so they are admitted and updated.
  static void Train(EmbeddingTable* t, uint64_t first, int n, int64_t step) {
    std::vector<uint64_t> keys(n);
    std::iota(keys.begin(), keys.end(), first);
    std::vector<float> out(static_cast<size_t>(n) * t->dim()), grads(out.size());
    for (size_t i = 0; i < grads.size(); ++i) grads[i] = 0.01f * static_cast<float>(i % 17) - 0.08f;
    for (int r = 0; r < 2; ++r) {
      t->Pull(keys, step + r, out.data());
      t->Push(keys, grads.data(), 0.05f, step + r);
    }
  }
  // Config() with rows idle for more than 5 steps evictable.
  static TableConfig Evicting() {
    TableConfig c = Config();
    c.eviction.ttl_steps = 5;
    return c;
  }
  // A new table with `files` (of dir_) loaded in order: a full snapshot and increments.
  std::unique_ptr<EmbeddingTable> Restore(const TableConfig& c,
                                          const std::vector<std::string>& files) const {
    auto t = Make(c);
    for (const std::string& f : files) {
      absl::Status loaded = t->Load(dir_ + "/" + f);
      EXPECT_TRUE(loaded.ok()) << f << ": " << loaded;
    }
    return t;
  }
  // Every row's key, embedding and optimizer state.
  static std::map<uint64_t, std::vector<float>> Dump(const EmbeddingTable& t) {
    std::map<uint64_t, std::vector<float>> rows;
    EXPECT_TRUE(t.ForEachRow(7, [&](absl::Span<const uint64_t> keys, const float* values) {
                   for (size_t i = 0; i < keys.size(); ++i) {
                     std::vector<float> v(values + i * t.dim(), values + (i + 1) * t.dim());
                     std::vector<float> state(t.state_floats());
                     EXPECT_TRUE(t.ReadOptimizerState(keys[i], state.data()));
                     v.insert(v.end(), state.begin(), state.end());
                     v.push_back(static_cast<float>(t.GetRowInfo(keys[i])->update_count));
                     EXPECT_TRUE(rows.emplace(keys[i], std::move(v)).second) << "seen twice";
                   }
                   return absl::OkStatus();
                 }).ok());
    return rows;
  }
  std::string dir_;
};

TEST_F(SnapshotTest, RoundTripKeepsRowsStateAndAdmission) {
  auto t = Make();
  Train(t.get(), 0, 500, 1);
  const uint64_t half_seen = 9999;  // seen once: not admitted, count 1 in the sketch
  std::vector<float> row(8);
  t->Pull({&half_seen, 1}, 3, row.data());
  ASSERT_EQ(t->size(), 500);
  const std::string path = dir_ + "/full.snap";
  ASSERT_TRUE(t->Save(path).ok());

  auto loaded = Make();
  Train(loaded.get(), 100000, 10, 1);  // content that Load must replace
  ASSERT_TRUE(loaded->Load(path).ok());
  EXPECT_EQ(loaded->size(), 500);
  EXPECT_EQ(Dump(*loaded), Dump(*t));
  EXPECT_EQ(loaded->GetRowInfo(7)->last_step, t->GetRowInfo(7)->last_step);
  // Same future: identical pushes give identical rows (Adam moments and steps restored).
  Train(t.get(), 0, 500, 10);
  Train(loaded.get(), 0, 500, 10);
  EXPECT_EQ(Dump(*loaded), Dump(*t));
  // Admission state restored: one more sighting admits the half-seen key.
  loaded->Pull({&half_seen, 1}, 20, row.data());
  EXPECT_TRUE(loaded->GetRowInfo(half_seen).has_value());
}

TEST_F(SnapshotTest, IncrementalHoldsOnlyChangesAndErasures) {
  const TableConfig c = Evicting();
  auto t = Make(c);
  Train(t.get(), 0, 3000, 100);
  ASSERT_TRUE(t->Save(dir_ + "/base.snap").ok());
  // Pulls touch rows without changing them: not in the incremental snapshot.
  std::vector<uint64_t> touched(2900);
  std::iota(touched.begin(), touched.end(), 100);
  std::vector<float> out(touched.size() * 8);
  t->Pull(touched, 200, out.data());
  Train(t.get(), 1000000, 50, 200);  // new rows
  Train(t.get(), 0, 20, 200);        // updated rows
  EXPECT_EQ(t->Evict(200), 80);      // keys 20..99 idle since step 101
  ASSERT_TRUE(t->SaveIncremental(dir_ + "/inc.snap").ok());
  auto full = ReadFileToString(dir_ + "/base.snap").value().size();
  auto inc = ReadFileToString(dir_ + "/inc.snap").value().size();
  EXPECT_LT(inc, full / 4);

  auto restored = Restore(c, {"base.snap", "inc.snap"});
  EXPECT_EQ(restored->size(), 2970);
  EXPECT_EQ(Dump(*restored), Dump(*t));

  // Nothing changed since: the next incremental snapshot is empty of rows.
  ASSERT_TRUE(t->SaveIncremental(dir_ + "/inc2.snap").ok());
  ASSERT_TRUE(restored->Load(dir_ + "/inc2.snap").ok());
  EXPECT_EQ(Dump(*restored), Dump(*t));
}

TEST_F(SnapshotTest, KeyErasedAndCreatedAgainLoadsAsItsNewRow) {
  const TableConfig c = Evicting();
  auto t = Make(c);
  Train(t.get(), 0, 100, 100);
  ASSERT_TRUE(t->Save(dir_ + "/base.snap").ok());
  Train(t.get(), 0, 10, 200);
  EXPECT_EQ(t->Evict(200), 90);  // keys 10..99: erased ...
  Train(t.get(), 50, 10, 200);   // ... and 50..59 created again
  ASSERT_TRUE(t->SaveIncremental(dir_ + "/inc.snap").ok());
  auto restored = Restore(c, {"base.snap", "inc.snap"});
  EXPECT_EQ(restored->size(), 20);
  EXPECT_EQ(Dump(*restored), Dump(*t));
}

// A push to any stripe completes while Save is provably between copying stripe 0 and
// writing it; its effect is in this snapshot (stripes not yet copied) or the next.
TEST_F(SnapshotTest, PushesProceedWhileASaveIsBeingWritten) {
  auto t = Make();
  Train(t.get(), 0, 1000, 1);
  absl::Notification mid_write, release, pushed;
  EmbeddingTable::SaveOptions options;
  options.after_chunk_copied = [&](int stripe) {
    if (stripe != 0) return;
    mid_write.Notify();
    release.WaitForNotificationWithTimeout(absl::Seconds(60));
  };
  absl::Status saved;
  std::thread saver([&] { saved = t->Save(dir_ + "/full.snap", {}, options); });
  ASSERT_TRUE(mid_write.WaitForNotificationWithTimeout(absl::Seconds(60)));
  std::thread pusher([&] {
    Train(t.get(), 0, 1000, 5);  // every stripe
    pushed.Notify();
  });
  EXPECT_TRUE(pushed.WaitForNotificationWithTimeout(absl::Seconds(60)))
      << "a push waited for the save";
  release.Notify();
  saver.join();
  pusher.join();
  ASSERT_TRUE(saved.ok()) << saved;
  ASSERT_TRUE(t->SaveIncremental(dir_ + "/inc.snap").ok());
  EXPECT_EQ(Dump(*Restore(Config(), {"full.snap", "inc.snap"})), Dump(*t));
}

// Rows updated, created, evicted and created again between the chunks of a save:
// each change is in that snapshot or the next, so the chain equals the table.
TEST_F(SnapshotTest, ChangesBetweenChunksAreInThisSnapshotOrTheNext) {
  for (bool incremental : {true, false}) {
    SCOPED_TRACE(incremental ? "incremental" : "full");
    const TableConfig c = Evicting();
    auto t = Make(c);
    Train(t.get(), 0, 400, 100);
    ASSERT_TRUE(t->Save(dir_ + "/base.snap").ok());
    Train(t.get(), 0, 100, 150);
    EmbeddingTable::SaveOptions options;
    options.incremental = incremental;
    options.chunk_bytes = 1;  // one row per lock hold
    int calls = 0;
    int64_t evicted = 0;
    options.after_chunk_copied = [&](int) {
      const int k = ++calls;
      const int64_t step = 200 + k;
      Train(t.get(), (k * 7) % 400, 3, step);    // updates (or creates again)
      Train(t.get(), 5000 + k * 3, 2, step);     // new rows
      if (k == 200) evicted = t->Evict(step);  // mid-walk: copied rows and rows ahead
    };
    ASSERT_TRUE(t->Save(dir_ + "/mid.snap", {}, options).ok());
    EXPECT_GT(evicted, 300);
    ASSERT_GT(calls, 200);
    ASSERT_TRUE(t->SaveIncremental(dir_ + "/next.snap").ok());
    const auto chain = incremental ? std::vector<std::string>{"base.snap", "mid.snap", "next.snap"}
                                   : std::vector<std::string>{"mid.snap", "next.snap"};
    EXPECT_EQ(Dump(*Restore(c, chain)), Dump(*t));
  }
}

TEST_F(SnapshotTest, AFailedSaveLosesNoChangeTheNextOneIsFull) {
  auto t = Make();
  Train(t.get(), 0, 1000, 1);
  ASSERT_TRUE(t->Save(dir_ + "/base.snap").ok());
  Train(t.get(), 0, 300, 10);
  // The directory disappears after stripe 0's dirty marks were cleared: the write fails.
  const std::string gone = dir_ + "/gone";
  ASSERT_TRUE(CreateDirectories(gone).ok());
  EmbeddingTable::SaveOptions options;
  options.incremental = true;
  options.after_chunk_copied = [&](int stripe) {
    if (stripe == 0) {
      EXPECT_TRUE(RemoveAll(gone).ok());
    }
  };
  EXPECT_FALSE(t->Save(gone + "/inc.snap", {}, options).ok());
  ASSERT_TRUE(t->SaveIncremental(dir_ + "/inc.snap").ok());  // written full
  auto restored = Make();
  Train(restored.get(), 500000, 10, 1);  // replaced: the fallback file is a full one
  ASSERT_TRUE(restored->Load(dir_ + "/inc.snap").ok());
  EXPECT_EQ(Dump(*restored), Dump(*t));
  // And the baseline is sound again: the next incremental holds only new changes.
  Train(t.get(), 0, 10, 20);
  ASSERT_TRUE(t->SaveIncremental(dir_ + "/inc2.snap").ok());
  EXPECT_LT(ReadFileToString(dir_ + "/inc2.snap").value().size(),
            ReadFileToString(dir_ + "/inc.snap").value().size() / 4);
  ASSERT_TRUE(restored->Load(dir_ + "/inc2.snap").ok());
  EXPECT_EQ(Dump(*restored), Dump(*t));
}

TEST_F(SnapshotTest, TruncatedOrCorruptedFileIsDataLossAndTableUnchanged) {
  auto t = Make();
  Train(t.get(), 0, 2000, 1);
  const std::string path = dir_ + "/good.snap";
  ASSERT_TRUE(t->Save(path).ok());
  const std::string bytes = ReadFileToString(path).value();

  auto victim = Make();
  Train(victim.get(), 50000, 100, 1);
  const auto before = Dump(*victim);
  struct Damage {
    std::string name;
    std::string bytes;
  };
  std::vector<Damage> damages;
  damages.push_back({"empty", ""});
  damages.push_back({"half header", bytes.substr(0, 30)});
  damages.push_back({"header only", bytes.substr(0, 72)});
  damages.push_back({"cut mid-rows", bytes.substr(0, bytes.size() / 2)});
  damages.push_back({"cut last byte", bytes.substr(0, bytes.size() - 1)});
  damages.push_back({"trailing byte", bytes + "x"});
  for (size_t at : {size_t{3}, size_t{20}, size_t{100}, bytes.size() / 3, bytes.size() - 3}) {
    std::string flipped = bytes;
    flipped[at] ^= 0x10;
    damages.push_back({"flip at " + std::to_string(at), flipped});
  }
  for (const Damage& d : damages) {
    const std::string bad = dir_ + "/bad.snap";
    ASSERT_TRUE(WriteFileAtomically(bad, d.bytes).ok());
    absl::Status s = victim->Load(bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << d.name << ": " << s;
    EXPECT_EQ(victim->size(), 100) << d.name;
  }
  EXPECT_EQ(Dump(*victim), before);
  EXPECT_EQ(victim->Load(dir_ + "/absent.snap").code(), absl::StatusCode::kNotFound);
}

TEST_F(SnapshotTest, MismatchedConfigIsInvalidArgument) {
  auto t = Make();
  Train(t.get(), 0, 10, 1);
  ASSERT_TRUE(t->Save(dir_ + "/a.snap").ok());
  TableConfig other = Config();
  other.dim = 16;
  absl::Status s = Make(other)->Load(dir_ + "/a.snap");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("dim 8"));
  other = Config();
  other.optimizer.kind = OptimizerKind::kSgd;
  EXPECT_EQ(Make(other)->Load(dir_ + "/a.snap").code(), absl::StatusCode::kInvalidArgument);
}

// Two tables of the same shape swapped in the config: each file names its table.
TEST_F(SnapshotTest, SnapshotOfAnotherTableIsRefused) {
  auto t = Make();
  Train(t.get(), 0, 10, 1);
  ASSERT_TRUE(t->Save(dir_ + "/a.snap").ok());
  TableConfig other = Config();
  other.name = "other";
  auto u = Make(other);
  absl::Status s = u->Load(dir_ + "/a.snap");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("table 'snap', not 'other'"));
  EXPECT_EQ(u->size(), 0);
  other = Config();
  other.initializer.seed = 99;  // same shape, another initializer: another fingerprint
  EXPECT_THAT(std::string(Make(other)->Load(dir_ + "/a.snap").message()),
              HasSubstr("config fingerprint"));
}

// A file bound to one job, step and rank loads only where those are expected.
TEST_F(SnapshotTest, BindingNamesWhatDiffers) {
  auto t = Make();
  Train(t.get(), 0, 10, 1);
  FileBinding origin;
  origin.job_id = 0xabc;
  origin.step = 20;
  origin.rank = 1;
  ASSERT_TRUE(t->Save(dir_ + "/a.snap", origin).ok());
  auto u = Make();
  EXPECT_TRUE(u->Verify(dir_ + "/a.snap", &origin).ok());
  FileBinding expected = origin;
  expected.step = 30;
  absl::Status s = u->Load(dir_ + "/a.snap", &expected);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("a.snap belongs elsewhere: step 20, not 30"));
  expected = origin;
  expected.job_id = 0xdef;
  expected.rank = 0;
  s = u->Load(dir_ + "/a.snap", &expected);
  EXPECT_THAT(std::string(s.message()), HasSubstr("job 0000000000000abc, not 0000000000000def"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("server rank 1, not 0"));
  EXPECT_EQ(u->size(), 0);
  ASSERT_TRUE(u->Load(dir_ + "/a.snap", &origin).ok());
  EXPECT_EQ(Dump(*u), Dump(*t));
}

// The MANIFEST checksums whole files: with plain embedded CRCs every snapshot of the
// same length had the same CRC-32C, whatever its rows held.
TEST_F(SnapshotTest, WholeFileChecksumDependsOnTheRows) {
  auto t = Make();
  Train(t.get(), 0, 10, 1);
  ASSERT_TRUE(t->Save(dir_ + "/a.snap").ok());
  Train(t.get(), 0, 10, 3);  // same keys, other values: same length
  ASSERT_TRUE(t->Save(dir_ + "/b.snap").ok());
  const std::string a = ReadFileToString(dir_ + "/a.snap").value();
  const std::string b = ReadFileToString(dir_ + "/b.snap").value();
  ASSERT_EQ(a.size(), b.size());
  ASSERT_NE(a, b);
  EXPECT_NE(Crc32c(a), Crc32c(b));
}

TEST_F(SnapshotTest, LoadIntoDifferentStripingKeepsRows) {
  auto t = Make();
  Train(t.get(), 0, 300, 1);
  ASSERT_TRUE(t->Save(dir_ + "/a.snap").ok());
  TableConfig other = Config();
  other.num_stripes = 16;  // the sketch cannot be reused; rows can
  auto u = Make(other);
  ASSERT_TRUE(u->Load(dir_ + "/a.snap").ok());
  EXPECT_EQ(Dump(*u), Dump(*t));
}

TEST_F(SnapshotTest, ForEachRowStreamsEveryRowOnceInBoundedChunks) {
  auto t = Make();
  Train(t.get(), 0, 1000, 1);
  int64_t rows = 0;
  size_t largest = 0;
  ASSERT_TRUE(t->ForEachRow(64, [&](absl::Span<const uint64_t> keys, const float*) {
                 rows += keys.size();
                 largest = std::max(largest, keys.size());
                 return absl::OkStatus();
               }).ok());
  EXPECT_EQ(rows, 1000);
  EXPECT_LE(largest, 64u);
  // The callback's error stops the walk and is returned.
  int calls = 0;
  absl::Status s = t->ForEachRow(10, [&](absl::Span<const uint64_t>, const float*) {
    return ++calls == 3 ? absl::CancelledError("stop") : absl::OkStatus();
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(t->ForEachRow(0, nullptr).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace towerps::sparse_emb
