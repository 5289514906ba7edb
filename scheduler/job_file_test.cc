#include "scheduler/job_file.h"

#include <unistd.h>

#include <filesystem>

#include "common/file_util.h"
#include "gtest/gtest.h"

namespace towerps::scheduler {
namespace {

class JobFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("job_file_test_" + std::to_string(::getpid()));
    ASSERT_TRUE(RemoveAll(dir_).ok());
    ASSERT_TRUE(CreateDirectories(dir_).ok());
    path_ = dir_ + "/scheduler.job";
  }
  void TearDown() override { (void)RemoveAll(dir_); }
  std::string dir_, path_;
};

TEST_F(JobFileTest, RoundTrip) {
  EXPECT_EQ(ReadJobFile(path_).status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(WriteJobFile(path_, {0x1234abcd, "tcp://127.0.0.1:4000", "running", 7}).ok());
  auto read = ReadJobFile(path_);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->job_id, 0x1234abcdu);
  EXPECT_EQ(read->endpoint, "tcp://127.0.0.1:4000");
  EXPECT_EQ(read->state, "running");
  EXPECT_EQ(read->epoch, 7u);
  EXPECT_EQ(*ReadFileToString(path_),
            "job 000000001234abcd\nendpoint tcp://127.0.0.1:4000\nstate running\nepoch 7\n");
}

TEST_F(JobFileTest, RefusesBadContents) {
  EXPECT_FALSE(WriteJobFile(path_, {1, "tcp://a:1", "paused", 1}).ok());
  EXPECT_FALSE(WriteJobFile(path_, {1, "tcp://a:1\nstate done", "running", 1}).ok());
  for (const char* text : {"job 1\nendpoint tcp://a:1\n",                   // no state
                           "job zz\nendpoint tcp://a:1\nstate running\n",   // bad id
                           "job 0\nendpoint tcp://a:1\nstate running\n",    // id 0
                           "job 1\nendpoint /etc/passwd\nstate running\n",  // not an endpoint
                           "job 1\nendpoint tcp://a:1\nstate running\nextra 1\n",  // unknown line
                           "job 1\nendpoint tcp://a:1\nstate running\nepoch -3\n"}) {
    ASSERT_TRUE(WriteFileAtomically(path_, text).ok());
    EXPECT_EQ(ReadJobFile(path_).status().code(), absl::StatusCode::kDataLoss) << text;
  }
}

}  // namespace
}  // namespace towerps::scheduler
