#include "ps/checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "common/file_binding.h"
#include "common/file_util.h"
#include "gtest/gtest.h"

namespace towerps::ps {
namespace {

constexpr uint64_t kJob = 0xfeed;

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::path(::testing::TempDir()) /
            ("ckpt_test_" + std::to_string(::getpid()));
    ASSERT_TRUE(RemoveAll(root_).ok());
  }
  void TearDown() override { (void)RemoveAll(root_); }

  // A complete checkpoint of two files at `step`.
  std::string Write(int64_t step, bool with_manifest = true, int64_t base = -1) {
    std::string dir = CheckpointDir(root_, step);
    EXPECT_TRUE(CreateDirectories(dir).ok());
    // Checkpoint files start with their binding.
    const FileBinding a{kJob, step, 0, "a", 1};
    const FileBinding b{kJob, step, 1, "b", 2};
    EXPECT_TRUE(WriteFileAtomically(dir + "/a", EncodeFileBinding(a) + "alpha").ok());
    EXPECT_TRUE(
        WriteFileAtomically(dir + "/b", EncodeFileBinding(b) + std::string(1000, 'b')).ok());
    if (with_manifest) {
      CheckpointManifest m;
      m.job_id = kJob;
      m.step = step;
      m.base_step = base;
      m.num_servers = 2;
      m.num_virtual_shards = 64;
      m.dense_params = 99;
      m.files = {*DescribeFile(dir, "a"), *DescribeFile(dir, "b")};
      m.partitions = {{0, 120, true}, {1, 37, false}};
      EXPECT_TRUE(WriteManifest(dir, m).ok());
    }
    return dir;
  }

  // The names of the entries under root_, sorted.
  std::vector<std::string> Entries() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(root_)) {
      names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  // Step names, sorted (for comparing with Entries()).
  static std::vector<std::string> Names(std::vector<int64_t> steps) {
    std::vector<std::string> names;
    for (int64_t step : steps) names.push_back(CheckpointName(step));
    std::sort(names.begin(), names.end());
    return names;
  }

  // Flips a byte of file b of `step`: the checkpoint (and every later link) is corrupt.
  void Corrupt(int64_t step) {
    const std::string path = CheckpointDir(root_, step) + "/b";
    std::string bytes = *ReadFileToString(path);
    bytes.back() ^= 1;
    ASSERT_TRUE(WriteFileAtomically(path, bytes).ok());
  }

  std::string root_;
};

TEST_F(CheckpointTest, RoundTrip) {
  std::string dir = Write(42);
  auto m = VerifyCheckpoint(dir);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->job_id, kJob);
  EXPECT_EQ(m->step, 42);
  EXPECT_EQ(m->num_servers, 2);
  EXPECT_EQ(m->num_virtual_shards, 64u);
  EXPECT_EQ(m->dense_params, 99u);
  ASSERT_EQ(m->files.size(), 2u);
  EXPECT_EQ(m->files[1].bytes, kFileBindingBytes + 1000u);
  ASSERT_EQ(m->partitions.size(), 2u);
  EXPECT_TRUE(m->partitions[0].done);
  EXPECT_EQ(m->partitions[0].offset, 120);
  EXPECT_FALSE(m->partitions[1].done);
  EXPECT_EQ(m->partitions[1].offset, 37);
}

TEST_F(CheckpointTest, TornAndCorruptRefused) {
  std::string torn = Write(1, /*with_manifest=*/false);
  auto status = VerifyCheckpoint(torn).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(status.message().find("torn"), std::string::npos);
  std::string dir = Write(2);
  const std::string b = *ReadFileToString(dir + "/b");
  ASSERT_TRUE(WriteFileAtomically(dir + "/b", b.substr(0, b.size() - 1) + "c").ok());
  status = VerifyCheckpoint(dir).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(status.message().find("b is corrupt"), std::string::npos);
  std::filesystem::remove(dir + "/a");
  EXPECT_EQ(VerifyCheckpoint(dir).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(CheckpointTest, MissingDirectorySaysSo) {
  for (const std::string& dir : {root_ + "/nope", CheckpointDir(root_, 3)}) {
    auto status = VerifyCheckpoint(dir).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
    EXPECT_NE(status.message().find("does not exist"), std::string::npos) << status;
  }
}

TEST_F(CheckpointTest, FilesBoundElsewhereAreRefused) {
  const std::string old_dir = Write(10);
  const std::string dir = Write(20);
  std::filesystem::copy_file(old_dir + "/b", dir + "/b",
                             std::filesystem::copy_options::overwrite_existing);
  auto status = VerifyCheckpoint(dir).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(status.message().find("b belongs elsewhere: step 10, not 20"), std::string::npos)
      << status;
  // A whole checkpoint copied under another step's name.
  std::filesystem::remove_all(dir);
  std::filesystem::copy(old_dir, dir);
  status = VerifyCheckpoint(dir).status();
  EXPECT_NE(status.message().find("is of step 10, not 20"), std::string::npos) << status;
  // A file that is not bound at all (an older towerps, or not a checkpoint file).
  ASSERT_TRUE(WriteFileAtomically(old_dir + "/a", "alpha").ok());
  status = VerifyCheckpoint(old_dir).status();
  EXPECT_NE(status.message().find("not bound to a job"), std::string::npos) << status;
}

TEST_F(CheckpointTest, ManifestNamesOnlyPlainFiles) {
  CheckpointManifest m;
  m.files = {{"../escape", 1, 0}};
  ASSERT_TRUE(CreateDirectories(root_).ok());
  EXPECT_EQ(WriteManifest(root_, m).code(), absl::StatusCode::kInvalidArgument);
  const std::string dir = Write(7);
  const std::string manifest = *ReadFileToString(dir + "/MANIFEST");
  std::string escaping = manifest;
  escaping.replace(escaping.find("file a "), 7, "file ../a ");
  ASSERT_TRUE(WriteFileAtomically(dir + "/MANIFEST", escaping).ok());
  EXPECT_NE(VerifyCheckpoint(dir).status().message().find("malformed"), std::string::npos);
  // A checkpoint of an older towerps (format 1) says what it is.
  ASSERT_TRUE(WriteFileAtomically(dir + "/MANIFEST", "towerps-checkpoint 1\nstep 7\n").ok());
  EXPECT_NE(VerifyCheckpoint(dir).status().message().find("older towerps"), std::string::npos);
}

TEST_F(CheckpointTest, ResumeOnlyFromThisRunsRoot) {
  const std::string dir = Write(9);
  EXPECT_EQ(CheckpointStepUnder(root_, dir).value_or(-1), 9);
  EXPECT_EQ(CheckpointStepUnder(root_ + "/", root_ + "/./step-0000000009").value_or(-1), 9);
  EXPECT_FALSE(CheckpointStepUnder(root_ + "/sub", dir).ok());
  EXPECT_FALSE(CheckpointStepUnder(root_, root_ + "/step-0000000009/..").ok());
  EXPECT_FALSE(CheckpointStepUnder(root_, root_ + "/elsewhere").ok());
  // A step directory that is a symlink out of the root resolves outside it.
  const std::string outside = root_ + "-outside/step-0000000011";
  ASSERT_TRUE(CreateDirectories(outside).ok());
  std::filesystem::create_directory_symlink(outside, CheckpointDir(root_, 11));
  EXPECT_FALSE(CheckpointStepUnder(root_, CheckpointDir(root_, 11)).ok());
  (void)RemoveAll(root_ + "-outside");
}

TEST_F(CheckpointTest, LatestSkipsBrokenOnes) {
  EXPECT_EQ(LatestCheckpoint(root_).status().code(), absl::StatusCode::kNotFound);
  Write(5);
  std::string newest_good = Write(10);
  Write(20, /*with_manifest=*/false);  // crashed mid-checkpoint
  auto latest = LatestCheckpoint(root_);
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(*latest, newest_good);
}

TEST_F(CheckpointTest, ChainsAreReadRootFirstAndVerifiedWhole) {
  Write(10);
  Write(20, true, 10);
  const std::string head = Write(30, true, 20);
  auto chain = ReadChain(head);
  ASSERT_TRUE(chain.ok()) << chain.status();
  ASSERT_EQ(chain->size(), 3u);
  EXPECT_EQ((*chain)[0].manifest.step, 10);
  EXPECT_EQ((*chain)[0].manifest.base_step, -1);
  EXPECT_EQ((*chain)[2].manifest.base_step, 20);
  EXPECT_EQ(VerifyCheckpoint(head + "/")->step, 30);
  EXPECT_EQ(*LatestCheckpoint(root_), head);
  // A corrupt middle link: 30 is unusable, naming the link; the newest whole chain is 10.
  const std::string mid = CheckpointDir(root_, 20);
  ASSERT_TRUE(WriteFileAtomically(mid + "/b", EncodeFileBinding({kJob, 20, 1, "b", 2}) +
                                                  std::string(1000, 'c')).ok());
  auto status = VerifyCheckpoint(head).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(status.message().find("link " + mid + " is corrupt"), std::string::npos) << status;
  EXPECT_EQ(*LatestCheckpoint(root_), CheckpointDir(root_, 10));
  // A missing link the same.
  ASSERT_TRUE(RemoveAll(mid).ok());
  status = VerifyCheckpoint(head).status();
  EXPECT_NE(status.message().find("link " + mid + " is unusable"), std::string::npos) << status;
  EXPECT_EQ(*LatestCheckpoint(root_), CheckpointDir(root_, 10));
  // A link of another job.
  Write(20, true, 10);
  const std::string dir10 = CheckpointDir(root_, 10);
  std::string manifest = *ReadFileToString(dir10 + "/MANIFEST");
  manifest.replace(manifest.find("000000000000feed"), 16, "000000000000beef");
  ASSERT_TRUE(WriteFileAtomically(dir10 + "/MANIFEST", manifest).ok());
  status = VerifyCheckpoint(head).status();
  EXPECT_NE(status.message().find("of another job"), std::string::npos) << status;
}

TEST_F(CheckpointTest, BaseLinesAreCheckedAndFormat2StillReads) {
  const std::string dir = Write(10);
  std::string text = *ReadFileToString(dir + "/MANIFEST");
  ASSERT_EQ(text.rfind("towerps-checkpoint 3\n", 0), 0u);
  const std::string step_line = "step 10\n";
  for (const char* bad : {"base 10\n", "base -1\n", "base 3\nbase 4\n"}) {
    std::string t = text;
    t.insert(t.find(step_line) + step_line.size(), bad);
    ASSERT_TRUE(WriteFileAtomically(dir + "/MANIFEST", t).ok());
    EXPECT_NE(ReadManifest(dir).status().message().find("malformed"), std::string::npos) << bad;
  }
  // Format 2: read as a full checkpoint; it has no base lines.
  std::string v2 = text;
  v2.replace(0, 20, "towerps-checkpoint 2");
  ASSERT_TRUE(WriteFileAtomically(dir + "/MANIFEST", v2).ok());
  EXPECT_EQ(VerifyCheckpoint(dir)->base_step, -1);
  v2.insert(v2.find(step_line) + step_line.size(), "base 3\n");
  ASSERT_TRUE(WriteFileAtomically(dir + "/MANIFEST", v2).ok());
  EXPECT_FALSE(ReadManifest(dir).ok());
  CheckpointManifest m;
  m.step = 5;
  m.base_step = 5;
  EXPECT_EQ(WriteManifest(dir, m).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(CheckpointTest, PruneKeepsTheNewestFullChains) {
  Write(10);
  Write(15, /*with_manifest=*/false);  // torn, older than any kept chain
  Write(20, true, 10);
  Write(30, true, 20);
  Write(40);
  Write(50, true, 40);
  Write(60);
  Write(70, true, 60);
  Write(80, /*with_manifest=*/false);  // torn, newer: left for a later prune
  const std::string latest = *LatestCheckpoint(root_);
  ASSERT_EQ(latest, CheckpointDir(root_, 70));
  EXPECT_EQ(PruneCheckpoints(root_, 0).value_or(-1), 0);  // 0: keep everything
  EXPECT_EQ(Entries().size(), 9u);
  auto pruned = PruneCheckpoints(root_, 2);
  ASSERT_TRUE(pruned.ok()) << pruned.status();
  EXPECT_EQ(*pruned, 4);
  EXPECT_EQ(Entries(), Names({40, 50, 60, 70, 80}));
  EXPECT_EQ(*LatestCheckpoint(root_), latest);
  EXPECT_EQ(PruneCheckpoints(root_, 2).value_or(-1), 0);  // nothing more to do
  EXPECT_EQ(PruneCheckpoints(root_, 1).value_or(-1), 2);
  EXPECT_EQ(Entries(), Names({60, 70, 80}));
  EXPECT_EQ(*LatestCheckpoint(root_), latest);
  EXPECT_TRUE(VerifyCheckpoint(latest).ok());
}

TEST_F(CheckpointTest, PruneKeepsTheNewestCompleteChainWhenNewerOnesAreBroken) {
  Write(5);
  Write(10);
  Write(20, true, 10);
  Write(30);  // the newest full one, corrupt: 30 and 40 are unusable
  Write(40, true, 30);
  Corrupt(30);
  ASSERT_EQ(*LatestCheckpoint(root_), CheckpointDir(root_, 20));
  EXPECT_EQ(PruneCheckpoints(root_, 1).value_or(-1), 1);  // only 5
  EXPECT_EQ(Entries(), Names({10, 20, 30, 40}));
  EXPECT_EQ(*LatestCheckpoint(root_), CheckpointDir(root_, 20));

  // The newest complete chain's root is kept even when newer full ones verify (a
  // chain built on an older base, as after resuming from it).
  ASSERT_TRUE(RemoveAll(root_).ok());
  Write(10);
  Write(30);
  Write(40, true, 10);
  ASSERT_EQ(*LatestCheckpoint(root_), CheckpointDir(root_, 40));
  EXPECT_EQ(PruneCheckpoints(root_, 1).value_or(-1), 0);
  EXPECT_EQ(Entries(), Names({10, 30, 40}));
}

TEST_F(CheckpointTest, PruneDeletesNothingWithoutACompleteChain) {
  Write(10, /*with_manifest=*/false);
  Write(20);
  Corrupt(20);
  Write(30, true, 25);  // its base is missing
  ASSERT_FALSE(LatestCheckpoint(root_).ok());
  auto pruned = PruneCheckpoints(root_, 1);
  ASSERT_TRUE(pruned.ok()) << pruned.status();
  EXPECT_EQ(*pruned, 0);
  EXPECT_EQ(Entries(), Names({10, 20, 30}));
  const std::string missing = root_ + "/nope";
  EXPECT_EQ(PruneCheckpoints(missing, 1).value_or(-1), 0);
}

TEST_F(CheckpointTest, PruneLeavesSymlinksAndOtherNamesAlone) {
  Write(10);
  Write(20);
  Write(30);
  // A symlink named like an old checkpoint, pointing at a checkpoint outside the root.
  const std::string outside = root_ + "-outside";
  ASSERT_TRUE(CreateDirectories(outside + "/kept").ok());
  ASSERT_TRUE(WriteFileAtomically(outside + "/kept/x", "x").ok());
  std::filesystem::create_directory_symlink(outside + "/kept", CheckpointDir(root_, 5));
  for (const char* stray : {"step-1", "step-000000000007", "notes"}) {
    ASSERT_TRUE(CreateDirectories(root_ + "/" + stray).ok());
  }
  ASSERT_TRUE(WriteFileAtomically(root_ + "/step-0000000008.tmp", "x").ok());
  EXPECT_EQ(PruneCheckpoints(root_, 1).value_or(-1), 2);  // 10 and 20
  std::vector<std::string> want = Names({5, 30});
  for (const char* stray : {"step-1", "step-000000000007", "notes", "step-0000000008.tmp"}) {
    want.push_back(stray);
  }
  std::sort(want.begin(), want.end());
  EXPECT_EQ(Entries(), want);
  EXPECT_TRUE(std::filesystem::exists(outside + "/kept/x"));
  EXPECT_EQ(*LatestCheckpoint(root_), CheckpointDir(root_, 30));
  (void)RemoveAll(outside);
}

}  // namespace
}  // namespace towerps::ps
