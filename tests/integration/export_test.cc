// `towerps export` from a running cluster (scheduler + a parameter server restored
// from a checkpoint) writes the same embeddings as export from that checkpoint.
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "common/file_util.h"
#include "gtest/gtest.h"
#include "index/embeddings.h"
#include "net/membership_client.h"
#include "ps/checkpoint.h"
#include "tests/integration/subprocess.h"

namespace towerps {
namespace {

using testing::Subprocess;
using namespace std::chrono_literals;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

class ExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    source_ = Env("TOWERPS_SOURCE_DIR");
    binary_ = Env("TOWERPS_BINARY_DIR") + "/cmd/towerps";
    ASSERT_FALSE(source_.empty()) << "run through ctest (TOWERPS_SOURCE_DIR unset)";
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("export_test_" + std::to_string(::getpid()));
    ASSERT_TRUE(RemoveAll(dir_).ok());
    ASSERT_TRUE(CreateDirectories(dir_).ok());
  }
  void TearDown() override {
    if (!HasFailure()) (void)RemoveAll(dir_);
  }

  // Runs a command to completion; prints its log when it fails.
  void Run(const std::string& name, std::vector<std::string> argv) {
    Subprocess p(std::move(argv), dir_ + "/" + name + ".log");
    std::optional<int> rc = p.Wait(180s);
    if (!rc || *rc != 0) {
      auto log = ReadFileToString(p.log_path());
      ADD_FAILURE() << name << (rc ? " exited " + std::to_string(*rc) : " timed out") << ":\n"
                    << (log.ok() ? *log : "");
    }
  }

  std::string source_, binary_, dir_;
};

TEST_F(ExportTest, LiveClusterExportEqualsCheckpointExport) {
  const std::string config = source_ + "/examples/generated.conf";
  const std::string ds = dir_ + "/ds";
  Run("generate", {binary_, "generate", "--output_dir=" + dir_ + "/logs", "--users=300",
                   "--items=200", "--interactions=6000", "--clusters=4"});
  Run("prepare", {binary_, "prepare", "--input=" + dir_ + "/logs", "--output=" + ds});
  Run("train", {binary_, "train", "--config=" + config, "--dataset=" + ds,
                "--run_dir=" + dir_ + "/run", "--threads=1", "--max_steps=20"});
  auto checkpoint = ps::LatestCheckpoint(dir_ + "/run/checkpoint");
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  Run("export_checkpoint", {binary_, "export", "--config=" + config, "--dataset=" + ds,
                            "--checkpoint=" + *checkpoint, "--embeddings=" + dir_ + "/from_ckpt"});
  ASSERT_FALSE(HasFailure());

  // A one-server cluster holding the same checkpoint.
  const std::string endpoint_file = dir_ + "/scheduler.endpoint";
  Subprocess scheduler({binary_, "scheduler", "--config=" + config, "--dataset=" + ds,
                        "--run_dir=" + dir_ + "/cluster", "--num_servers=1", "--num_workers=1",
                        "--endpoint_file=" + endpoint_file},
                       dir_ + "/scheduler.log");
  std::string sched;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (sched.empty() && std::chrono::steady_clock::now() < deadline) {
    auto text = ReadFileToString(endpoint_file);
    if (text.ok()) sched = *text;
    if (sched.empty()) std::this_thread::sleep_for(20ms);
  }
  ASSERT_FALSE(sched.empty()) << "the scheduler did not start";
  sched.erase(sched.find_last_not_of("\n") + 1);
  Subprocess ps({binary_, "ps", "--config=" + config, "--dataset=" + ds, "--scheduler=" + sched,
                 "--restore=" + *checkpoint},
                dir_ + "/ps.log");
  net::ZmqContext ctx;
  net::RpcClientOptions options;
  options.endpoint = sched;
  auto membership = net::MembershipClient::Connect(&ctx, options);
  ASSERT_TRUE(membership.ok());
  ASSERT_TRUE((*membership)->Register(net::kRoleWorker, 0, "").ok());  // the cluster forms
  ASSERT_TRUE((*membership)->WaitForCluster(net::kRoleWorker, 0, 30000).ok());
  Run("export_cluster", {binary_, "export", "--config=" + config, "--dataset=" + ds,
                         "--scheduler=" + sched, "--embeddings=" + dir_ + "/from_cluster"});
  ASSERT_TRUE((*membership)->Control("stop").ok());
  ASSERT_FALSE(HasFailure()) << "see " << dir_ << "/ps.log";

  for (const char* side : {"users.emb", "items.emb"}) {
    auto a = index::EmbeddingTable::Read(dir_ + "/from_ckpt/" + side);
    auto b = index::EmbeddingTable::Read(dir_ + "/from_cluster/" + side);
    ASSERT_TRUE(a.ok() && b.ok()) << side;
    EXPECT_GT((*a)->size(), 100);
    EXPECT_EQ((*a)->keys, (*b)->keys) << side;
    EXPECT_EQ((*a)->raw_ids, (*b)->raw_ids) << side;
    ASSERT_EQ((*a)->values.size(), (*b)->values.size());
    for (size_t i = 0; i < (*a)->values.size(); ++i) {
      ASSERT_NEAR((*a)->values[i], (*b)->values[i], 1e-5) << side << " value " << i;
    }
  }
}

}  // namespace
}  // namespace towerps
