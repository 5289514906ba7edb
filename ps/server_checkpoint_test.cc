// A parameter server's checkpoint files: bound to their job, step, rank and table;
// restored all or nothing; named on the wire by a step under the server's own root.
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

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

  // What the scheduler does: the server writes its files, then the MANIFEST.
  static std::string Checkpoint(ParameterServer* server, const std::string& root, int64_t step) {
    const std::string dir = CheckpointDir(root, step);
    auto files = server->SaveCheckpoint(dir, step);
    EXPECT_TRUE(files.ok()) << files.status();
    CheckpointManifest m;
    m.job_id = server->options().job_id;
    m.step = step;
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

}  // namespace
}  // namespace towerps::ps
