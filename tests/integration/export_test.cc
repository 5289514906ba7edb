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
#include "tests/integration/process_test.h"

namespace towerps {
namespace {

using testing::Subprocess;
using namespace std::chrono_literals;

class ExportTest : public testing::ProcessTest {};

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
  std::unique_ptr<Subprocess> scheduler;
  const std::string sched = StartScheduler(
      {"--config=" + config, "--dataset=" + ds, "--run_dir=" + dir_ + "/cluster",
       "--num_servers=1", "--num_workers=1"},
      &scheduler);
  ASSERT_FALSE(sched.empty());
  auto ps = StartNode({"ps", "--restore=" + *checkpoint, "--run_dir=" + dir_ + "/cluster"}, config,
                      ds, sched, "ps.log");
  auto membership = ConnectScheduler(sched);
  ASSERT_NE(membership, nullptr);
  ASSERT_TRUE(membership->Register(net::kRoleWorker, 0, "").ok());  // the cluster forms
  ASSERT_TRUE(membership->WaitForCluster(net::kRoleWorker, 0, 30000).ok());
  Run("export_cluster", {binary_, "export", "--config=" + config, "--dataset=" + ds,
                         "--scheduler=" + sched, "--embeddings=" + dir_ + "/from_cluster"});
  ASSERT_TRUE(membership->Control("stop").ok());
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
