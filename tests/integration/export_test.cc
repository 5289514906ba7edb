// `towerps export` from a running cluster (scheduler + a parameter server restored
// from a checkpoint) writes the same embeddings as export from that checkpoint, in
// plaintext and with CURVE keys (the operator key reads rows and dense blocks).
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
#include "net/curve_keys.h"
#include "net/membership_client.h"
#include "ps/checkpoint.h"
#include "tests/integration/process_test.h"

namespace towerps {
namespace {

using testing::Subprocess;
using namespace std::chrono_literals;

// Parameter: the cluster and the export run with CURVE keys (--curve_dir).
class ExportTest : public testing::ProcessTest, public ::testing::WithParamInterface<bool> {
 protected:
  // A membership client of the scheduler as `identity` (its keys when secure).
  std::unique_ptr<net::MembershipClient> Membership(const std::string& endpoint,
                                                    const std::string& keys,
                                                    const std::string& identity) {
    if (keys.empty()) return ConnectScheduler(endpoint);
    auto loaded = net::LoadJobKeys(keys, identity);
    EXPECT_TRUE(loaded.ok()) << loaded.status();
    net::RpcClientOptions options;
    options.endpoint = endpoint;
    if (loaded.ok()) options.curve = *loaded->ClientCurve("scheduler");
    auto client = net::MembershipClient::Connect(&ctx_, options);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? std::move(client).value() : nullptr;
  }
};

TEST_P(ExportTest, LiveClusterExportEqualsCheckpointExport) {
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
  const bool secure = GetParam();
  const std::string keys = secure ? dir_ + "/keys" : "";
  std::vector<std::string> curve;  // the flag every process gets when secure
  if (secure) {
    Run("keygen", {binary_, "keygen", "--output_dir=" + keys});
    curve.push_back("--curve_dir=" + keys);
  }
  std::unique_ptr<Subprocess> scheduler;
  std::vector<std::string> scheduler_flags = {"--config=" + config, "--dataset=" + ds,
                                              "--run_dir=" + dir_ + "/cluster", "--num_servers=1",
                                              "--num_workers=1",
                                              // The test's worker never heartbeats: it
                                              // must not be declared dead mid-export.
                                              "--heartbeat_timeout_ms=600000"};
  scheduler_flags.insert(scheduler_flags.end(), curve.begin(), curve.end());
  const std::string sched = StartScheduler(scheduler_flags, &scheduler);
  ASSERT_FALSE(sched.empty());
  std::vector<std::string> ps_flags = {"ps", "--rank=0", "--restore=" + *checkpoint,
                                       "--run_dir=" + dir_ + "/cluster"};
  ps_flags.insert(ps_flags.end(), curve.begin(), curve.end());
  auto ps = StartNode(ps_flags, config, ds, sched, "ps.log");
  auto membership = Membership(sched, keys, "worker/0");
  ASSERT_NE(membership, nullptr);
  ASSERT_TRUE(membership->Register(net::kRoleWorker, 0, "").ok());  // the cluster forms
  ASSERT_TRUE(membership->WaitForCluster(net::kRoleWorker, 0, 30000).ok());
  std::vector<std::string> export_argv = {binary_,
                                          "export",
                                          "--config=" + config,
                                          "--dataset=" + ds,
                                          "--scheduler=" + sched,
                                          "--embeddings=" + dir_ + "/from_cluster"};
  export_argv.insert(export_argv.end(), curve.begin(), curve.end());
  Run("export_cluster", export_argv);
  auto op = Membership(sched, keys, "operator");
  ASSERT_NE(op, nullptr);
  ASSERT_TRUE(op->Control("stop").ok());
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

INSTANTIATE_TEST_SUITE_P(Curve, ExportTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Secure" : "Plaintext";
                         });

}  // namespace
}  // namespace towerps
