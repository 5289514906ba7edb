#include "ps/checkpoint.h"

#include <unistd.h>

#include <filesystem>

#include "common/file_util.h"
#include "gtest/gtest.h"

namespace towerps::ps {
namespace {

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::path(::testing::TempDir()) /
            ("ckpt_test_" + std::to_string(::getpid()));
    ASSERT_TRUE(RemoveAll(root_).ok());
  }
  void TearDown() override { (void)RemoveAll(root_); }

  // A complete checkpoint of two files at `step`.
  std::string Write(int64_t step, bool with_manifest = true) {
    std::string dir = CheckpointDir(root_, step);
    EXPECT_TRUE(CreateDirectories(dir).ok());
    EXPECT_TRUE(WriteFileAtomically(dir + "/a", "alpha").ok());
    EXPECT_TRUE(WriteFileAtomically(dir + "/b", std::string(1000, 'b')).ok());
    if (with_manifest) {
      CheckpointManifest m;
      m.step = step;
      m.num_servers = 2;
      m.num_virtual_shards = 64;
      m.dense_params = 99;
      m.files = {*DescribeFile(dir, "a"), *DescribeFile(dir, "b")};
      m.partitions = {{0, 120, true}, {1, 37, false}};
      EXPECT_TRUE(WriteManifest(dir, m).ok());
    }
    return dir;
  }

  std::string root_;
};

TEST_F(CheckpointTest, RoundTrip) {
  std::string dir = Write(42);
  auto m = VerifyCheckpoint(dir);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->step, 42);
  EXPECT_EQ(m->num_servers, 2);
  EXPECT_EQ(m->num_virtual_shards, 64u);
  EXPECT_EQ(m->dense_params, 99u);
  ASSERT_EQ(m->files.size(), 2u);
  EXPECT_EQ(m->files[1].bytes, 1000u);
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
  ASSERT_TRUE(WriteFileAtomically(dir + "/b", std::string(999, 'b') + "c").ok());
  status = VerifyCheckpoint(dir).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(status.message().find("b is corrupt"), std::string::npos);
  std::filesystem::remove(dir + "/a");
  EXPECT_EQ(VerifyCheckpoint(dir).status().code(), absl::StatusCode::kDataLoss);
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

}  // namespace
}  // namespace towerps::ps
