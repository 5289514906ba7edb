// A parameter server's checkpoint files: bound to their job, step, rank and table;
// restored all or nothing; named on the wire by a step under the server's own root.
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/file_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ps/checkpoint.h"
#include "ps/server.h"
#include "ps/server_harness.h"

namespace towerps::ps {
namespace {

using harness::kDim;
using harness::ServerHarness;
using net::wire::Envelope;
using ::testing::HasSubstr;

constexpr uint64_t kJob = 0x1234;

class ServerCheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::path(::testing::TempDir()) /
            ("ps_server_ckpt_" + std::to_string(::getpid()));
    ASSERT_TRUE(RemoveAll(root_).ok());
  }
  void TearDown() override { (void)RemoveAll(root_); }

  // Two tables of the same shape ("items", "users"), a job id and a checkpoint root.
  ParameterServerOptions Options(uint64_t job = kJob) const {
    ParameterServerOptions o = harness::Options();
    sparse_emb::TableConfig users = o.tables[0];
    users.name = "users";
    o.tables.push_back(users);
    o.job_id = job;
    o.checkpoint_root = root_;
    return o;
  }

  // What the scheduler does: the server writes its files, then the MANIFEST (an
  // incremental checkpoint on `base` when >= 0).
  static std::string Checkpoint(ParameterServer* server, const std::string& root, int64_t step,
                                int64_t base = -1) {
    const std::string dir = CheckpointDir(root, step);
    auto files = server->SaveCheckpoint(dir, step, base);
    EXPECT_TRUE(files.ok()) << files.status();
    if (!files.ok()) return dir;
    CheckpointManifest m;
    m.job_id = server->options().job_id;
    m.step = step;
    m.base_step = base;
    m.dense_params = server->options().dense_params;
    for (const std::string& name : *files) m.files.push_back(*DescribeFile(dir, name));
    EXPECT_TRUE(WriteManifest(dir, m).ok());
    return dir;
  }

  // Pulls and pushes keys 1..3 of both tables once.
  static void Train(ServerHarness* h, uint64_t seq) {
    for (uint32_t table = 0; table < 2; ++table) {
      EXPECT_TRUE(
          h->Push({1, 2, 3}, std::vector<float>(3 * kDim, 1.0f), 1, seq * 2 + table, table).ok());
    }
  }

  static void Copy(const std::string& from, const std::string& to) {
    std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing);
  }

  std::string root_;
};

TEST_F(ServerCheckpointTest, RoundTripAndCorruptionRefused) {
  ServerHarness a(Options());
  Train(&a, 1);
  const std::vector<float> rows = a.Pull({1, 2, 3});
  const std::string dir = Checkpoint(a.server(), root_, 10);
  ServerHarness b(Options());
  ASSERT_TRUE(b.server()->LoadCheckpoint(dir, /*require_this_job=*/true).ok());
  EXPECT_EQ(b.Pull({1, 2, 3}, /*create=*/false), rows);
  // Flip one byte of the dense file, or truncate it: refused with DataLoss.
  const std::string dense = dir + "/ps-0-dense.bin";
  const std::string bytes = *ReadFileToString(dense);
  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 1;
  for (const std::string& bad : {flipped, bytes.substr(0, bytes.size() - 9)}) {
    ASSERT_TRUE(WriteFileAtomically(dense, bad).ok());
    ServerHarness c(Options());
    EXPECT_EQ(c.server()->LoadCheckpoint(dir).code(), absl::StatusCode::kDataLoss);
  }
  std::filesystem::remove(dir + "/MANIFEST");
  ServerHarness d(Options());
  absl::Status torn = d.server()->LoadCheckpoint(dir);
  EXPECT_THAT(std::string(torn.message()), HasSubstr("torn checkpoint"));
  EXPECT_THAT(std::string(d.server()->LoadCheckpoint(root_ + "/nope").message()),
              HasSubstr("does not exist"));
}

// Every file carried its own CRC at its end, so its whole-file CRC-32C in the MANIFEST
// was the same at every step: a file copied in from an older step loaded silently.
TEST_F(ServerCheckpointTest, FileFromAnotherStepOrRunIsRefused) {
  ServerHarness a(Options());
  Train(&a, 1);
  const std::string old_step = Checkpoint(a.server(), root_, 10);
  Train(&a, 2);
  const std::string dir = Checkpoint(a.server(), root_, 20);
  const std::string table = "/ps-0-table-0.snap";
  Copy(old_step + table, dir + table);
  ServerHarness b(Options());
  absl::Status s = b.server()->LoadCheckpoint(dir);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("ps-0-table-0.snap belongs elsewhere: step 10, not 20"));
  EXPECT_EQ(b.server()->table(0)->size(), 0);

  // The same step of another run (another job id).
  ServerHarness other(Options(kJob + 1));
  Train(&other, 1);
  Train(&other, 2);
  const std::string other_dir = Checkpoint(other.server(), root_ + "/other", 20);
  Copy(CheckpointDir(root_ + "/other", 20) + table, dir + table);
  s = b.server()->LoadCheckpoint(dir);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("job 0000000000001235, not 0000000000001234"));
  // A whole checkpoint of another job is refused where the job must match.
  ServerHarness c(Options());
  s = c.server()->LoadCheckpoint(other_dir, /*require_this_job=*/true);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_EQ(c.server()->table(0)->size(), 0);
}

// Two tables of the same shape swapped in the config: each file names its table.
TEST_F(ServerCheckpointTest, SwappedTablesAreRefused) {
  ServerHarness a(Options());
  Train(&a, 1);
  const std::string dir = Checkpoint(a.server(), root_, 10);
  ParameterServerOptions swapped = Options();
  std::swap(swapped.tables[0], swapped.tables[1]);
  ServerHarness b(swapped);
  absl::Status s = b.server()->LoadCheckpoint(dir);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("table 'items', not 'users'"));
}

// The tables used to be replaced one by one, so a bad file after the first left the
// server half restored when the error was returned.
TEST_F(ServerCheckpointTest, FailedRestoreLeavesTheShardsUnchanged) {
  ServerHarness a(Options());
  Train(&a, 1);
  const std::string dir = Checkpoint(a.server(), root_, 10);
  Train(&a, 2);
  const std::vector<float> items = a.Pull({1, 2, 3});
  std::vector<float> dense(Options().dense_params);
  const int64_t version = a.server()->dense()->Read(dense.data());
  // The last table's file is damaged (its MANIFEST checksum no longer matches).
  const std::string path = dir + "/ps-0-table-1.snap";
  std::string bytes = *ReadFileToString(path);
  bytes[bytes.size() - 20] ^= 1;
  ASSERT_TRUE(WriteFileAtomically(path, bytes).ok());
  EXPECT_EQ(a.server()->LoadCheckpoint(dir).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(a.Pull({1, 2, 3}, /*create=*/false), items);
  std::vector<float> after(dense.size());
  EXPECT_EQ(a.server()->dense()->Read(after.data()), version);
  EXPECT_EQ(after, dense);
  // A file the MANIFEST does not list (or a missing one) fails the same way.
  std::filesystem::remove(path);
  EXPECT_EQ(a.server()->LoadCheckpoint(dir).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(a.Pull({1, 2, 3}, /*create=*/false), items);
}

// A Checkpoint message names a step; the directory is the server's own root.
TEST_F(ServerCheckpointTest, MessagesNameStepsNotPaths) {
  ServerHarness a(Options());
  Train(&a, 1);
  auto order = [&](int64_t step, bool restore, uint64_t job, const char* dir) {
    return a.Call([&](Envelope::Body::Builder b) {
      auto checkpoint = b.initCheckpoint();
      checkpoint.setStep(step);
      checkpoint.setRestore(restore);
      checkpoint.setJobId(job);
      if (dir != nullptr) checkpoint.setDir(dir);
    });
  };
  EXPECT_EQ(order(5, false, kJob, "../../escape").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(std::filesystem::exists(root_ + "/../../escape"));
  EXPECT_EQ(order(-1, false, kJob, nullptr).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(order(5, false, kJob + 1, nullptr).status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto saved = order(5, false, kJob, nullptr);
  ASSERT_TRUE(saved.ok()) << saved.status();
  EXPECT_EQ((*saved)->envelope().getBody().getCheckpointReply().getFiles().size(), 3u);
  EXPECT_TRUE(std::filesystem::exists(CheckpointDir(root_, 5) + "/ps-0-dense.bin"));
  // A step directory that is a symlink could lead anywhere: refused.
  const std::string elsewhere = root_ + "-elsewhere";
  ASSERT_TRUE(CreateDirectories(elsewhere).ok());
  std::filesystem::create_directory_symlink(elsewhere, CheckpointDir(root_, 6));
  EXPECT_EQ(order(6, false, kJob, nullptr).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(std::filesystem::is_empty(elsewhere));
  EXPECT_EQ(order(6, true, kJob, nullptr).status().code(), absl::StatusCode::kInvalidArgument);
  (void)RemoveAll(elsewhere);
  // Without a root of its own a server writes nothing.
  ParameterServerOptions rootless = Options();
  rootless.checkpoint_root.clear();
  ServerHarness b(rootless);
  auto refused = b.Call([&](Envelope::Body::Builder body) { body.initCheckpoint().setStep(5); });
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
}

// --- incremental checkpoints: chains ---

// Tables with optimizer state (Adam) and keys in every stripe.
ParameterServerOptions WithState(ParameterServerOptions o) {
  for (auto& t : o.tables) t.optimizer.kind = sparse_emb::OptimizerKind::kAdam;
  o.dense_optimizer.kind = models::DenseOptimizerKind::kAdam;
  return o;
}

// Pushes keys [first, first + n) of both tables and a dense gradient.
void TrainRange(ParameterServer* server, uint64_t first, int n, float g, int64_t step) {
  std::vector<uint64_t> keys(n);
  for (int i = 0; i < n; ++i) keys[i] = first + i;
  std::vector<float> grads(static_cast<size_t>(n) * kDim);
  for (size_t i = 0; i < grads.size(); ++i) grads[i] = g * static_cast<float>(i % 7 + 1) / 7;
  for (int t = 0; t < 2; ++t) server->table(t)->Push(keys, grads.data(), 0.1f, step);
  std::vector<float> dense(server->dense()->size(), g);
  ASSERT_TRUE(server->dense()->Apply(dense, 0.1f).ok());
}

// Everything a restore must bring back: every row of both tables with its optimizer
// state, and the dense block's file (values, optimizer state, version) as Save writes it.
struct State {
  std::map<std::pair<int, uint64_t>, std::vector<float>> rows;
  std::string dense;
  bool operator==(const State&) const = default;
};
State Capture(ParameterServer* server, const std::string& scratch) {
  State s;
  for (int t = 0; t < 2; ++t) {
    sparse_emb::EmbeddingTable* table = server->table(t);
    EXPECT_TRUE(table->ForEachRow(100, [&](absl::Span<const uint64_t> keys, const float* v) {
      for (size_t i = 0; i < keys.size(); ++i) {
        std::vector<float> row(v + i * kDim, v + (i + 1) * kDim);
        std::vector<float> state(table->state_floats());
        EXPECT_TRUE(table->ReadOptimizerState(keys[i], state.data()));
        row.insert(row.end(), state.begin(), state.end());
        s.rows[{t, keys[i]}] = std::move(row);
      }
      return absl::OkStatus();
    }).ok());
  }
  EXPECT_TRUE(server->dense()->Save(scratch).ok());
  s.dense = *ReadFileToString(scratch);
  return s;
}

TEST_F(ServerCheckpointTest, ChainRestoreEqualsTheStateAtItsStep) {
  ServerHarness a(WithState(Options()));
  TrainRange(a.server(), 0, 2000, 1.0f, 1);
  Checkpoint(a.server(), root_, 10);
  TrainRange(a.server(), 100, 50, -0.5f, 11);  // 1% of the rows changed
  TrainRange(a.server(), 5000, 30, 0.3f, 11);  // new rows
  Checkpoint(a.server(), root_, 20, 10);
  TrainRange(a.server(), 1900, 200, 0.7f, 21);
  const std::string dir30 = Checkpoint(a.server(), root_, 30, 20);
  const State at30 = Capture(a.server(), root_ + "/a30.bin");
  TrainRange(a.server(), 0, 10, 2.0f, 31);  // after the checkpoint: not restored
  // Increments hold only what changed.
  const auto table_bytes = [&](int64_t step) {
    return std::filesystem::file_size(CheckpointDir(root_, step) + "/ps-0-table-0.snap");
  };
  EXPECT_LT(table_bytes(20), table_bytes(10) / 10);
  ASSERT_EQ(VerifyCheckpoint(dir30)->base_step, 20);

  ServerHarness b(WithState(Options()));
  TrainRange(b.server(), 7000, 10, 1.0f, 1);  // content the restore replaces
  ASSERT_TRUE(b.server()->LoadCheckpoint(dir30, /*require_this_job=*/true).ok());
  EXPECT_EQ(Capture(b.server(), root_ + "/b30.bin"), at30);
  EXPECT_EQ(b.server()->table(0)->size(), 2130);  // 0..2099 and 5000..5029
}

TEST_F(ServerCheckpointTest, MissingOrCorruptLinkIsRefusedAndLatestFallsBack) {
  ServerHarness a(WithState(Options()));
  TrainRange(a.server(), 0, 500, 1.0f, 1);
  const std::string dir10 = Checkpoint(a.server(), root_, 10);
  TrainRange(a.server(), 0, 50, 1.0f, 11);
  const std::string dir20 = Checkpoint(a.server(), root_, 20, 10);
  TrainRange(a.server(), 0, 50, 1.0f, 21);
  const std::string dir30 = Checkpoint(a.server(), root_, 30, 20);
  ASSERT_EQ(*LatestCheckpoint(root_), dir30);

  ServerHarness b(WithState(Options()));
  TrainRange(b.server(), 0, 20, 3.0f, 1);
  const State before = Capture(b.server(), root_ + "/before.bin");
  // A corrupt link (one byte of the middle increment's table file).
  const std::string table = dir20 + "/ps-0-table-1.snap";
  const std::string good = *ReadFileToString(table);
  std::string bad = good;
  bad[bad.size() / 2] ^= 1;
  ASSERT_TRUE(WriteFileAtomically(table, bad).ok());
  absl::Status s = b.server()->LoadCheckpoint(dir30, true);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(dir20));
  EXPECT_EQ(Capture(b.server(), root_ + "/after.bin"), before);  // nothing applied
  EXPECT_EQ(*LatestCheckpoint(root_), dir10);
  // A missing link.
  ASSERT_TRUE(RemoveAll(dir20).ok());
  s = b.server()->LoadCheckpoint(dir30, true);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(dir20));
  EXPECT_EQ(Capture(b.server(), root_ + "/after.bin"), before);
  EXPECT_EQ(*LatestCheckpoint(root_), dir10);
  // The fallback restores.
  ASSERT_TRUE(b.server()->LoadCheckpoint(*LatestCheckpoint(root_), true).ok());
  EXPECT_EQ(b.server()->table(0)->size(), 500);
}

TEST_F(ServerCheckpointTest, IncrementalOrderOnAnotherBaseIsRefused) {
  ServerHarness a(WithState(Options()));
  TrainRange(a.server(), 0, 100, 1.0f, 1);
  auto order = [&](ServerHarness* h, int64_t step, int64_t base, bool restore = false) {
    return h->Call([&](Envelope::Body::Builder b) {
      auto checkpoint = b.initCheckpoint();
      checkpoint.setStep(step);
      checkpoint.setJobId(kJob);
      checkpoint.setRestore(restore);
      checkpoint.setIncremental(base >= 0);
      checkpoint.setBaseStep(base);
    });
  };
  // No checkpoint yet: nothing to be incremental to.
  EXPECT_EQ(order(&a, 10, 5).status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(order(&a, 10, -1).ok());
  EXPECT_EQ(order(&a, 20, 15).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(std::filesystem::exists(CheckpointDir(root_, 20)));
  EXPECT_EQ(order(&a, 20, 20).status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(order(&a, 20, 10).ok());
  // The base is the last checkpoint, not any earlier one.
  EXPECT_EQ(order(&a, 30, 10).status().code(), absl::StatusCode::kFailedPrecondition);
  // A replacement server restored step 10: its base is 10.
  CheckpointManifest m;
  m.job_id = kJob;
  m.step = 10;
  m.dense_params = Options().dense_params;
  for (const char* f : {"ps-0-table-0.snap", "ps-0-table-1.snap", "ps-0-dense.bin"}) {
    m.files.push_back(*DescribeFile(CheckpointDir(root_, 10), f));
  }
  ASSERT_TRUE(WriteManifest(CheckpointDir(root_, 10), m).ok());
  ServerHarness b(WithState(Options()));
  ASSERT_TRUE(order(&b, 10, -1, /*restore=*/true).ok());
  EXPECT_EQ(order(&b, 30, 20).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(order(&b, 30, 10).ok());
}

// A push sent before the workers learnt of a restore (a synchronous job's rollback:
// the live servers restore too) is refused, so it never lands on the restored state;
// the reconnected worker's client (a new id) pushes as usual.
TEST_F(ServerCheckpointTest, PushesOfClientsFromBeforeARestoreAreRefused) {
  ServerHarness a(WithState(Options()));
  ASSERT_TRUE(a.Push({1, 2, 3}, std::vector<float>(3 * kDim, 1.0f), /*client=*/7, 1).ok());
  const std::string dir = Checkpoint(a.server(), root_, 10);
  const std::vector<float> saved = a.Pull({1, 2, 3});
  ASSERT_TRUE(a.Push({1, 2, 3}, std::vector<float>(3 * kDim, 1.0f), 7, 2).ok());
  ASSERT_TRUE(a.server()->LoadCheckpoint(dir, /*require_this_job=*/true).ok());
  auto stale = a.Push({1, 2, 3}, std::vector<float>(3 * kDim, 1.0f), 7, 3);
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kUnavailable) << stale.status();
  EXPECT_EQ(a.Pull({1, 2, 3}), saved) << "the restored rows are untouched";
  auto fresh = a.Push({1, 2, 3}, std::vector<float>(3 * kDim, 1.0f), 8, 1);
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_FALSE(*fresh);
  EXPECT_NE(a.Pull({1, 2, 3}), saved);
}

// A push completes while the server is provably between copying a stripe for a
// checkpoint and writing it (the save waits in the hook until the push is done).
TEST_F(ServerCheckpointTest, PushesProceedWhileACheckpointIsWritten) {
  absl::Notification mid_write, release, pushed;
  ParameterServerOptions options = WithState(Options());
  options.checkpoint_chunk_copied = [&](int table, int stripe) {
    if (table != 0 || stripe != 0) return;
    mid_write.Notify();
    release.WaitForNotificationWithTimeout(absl::Seconds(60));
  };
  ServerHarness a(options);
  TrainRange(a.server(), 0, 1000, 1.0f, 1);
  absl::StatusOr<std::vector<std::string>> saved;
  std::thread saver([&] { saved = a.server()->SaveCheckpoint(CheckpointDir(root_, 10), 10); });
  ASSERT_TRUE(mid_write.WaitForNotificationWithTimeout(absl::Seconds(60)));
  std::thread pusher([&] {
    std::vector<uint64_t> keys(256);
    for (size_t i = 0; i < keys.size(); ++i) keys[i] = i;  // every stripe of both tables
    for (uint32_t t = 0; t < 2; ++t) {
      auto done = a.Push(keys, std::vector<float>(keys.size() * kDim, 0.5f), 7, t, t);
      EXPECT_TRUE(done.ok()) << done.status();
    }
    pushed.Notify();
  });
  EXPECT_TRUE(pushed.WaitForNotificationWithTimeout(absl::Seconds(60)))
      << "a push waited for the checkpoint";
  release.Notify();
  saver.join();
  pusher.join();
  ASSERT_TRUE(saved.ok()) << saved.status();
}

}  // namespace
}  // namespace towerps::ps
