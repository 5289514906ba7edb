// A secured cluster (issue 12, "No authentication"): real towerps processes on
// 127.0.0.1 with keys from `towerps keygen`. A process without the job's keys cannot
// stop the job, forge a clock, push to a server or order a checkpoint; a process
// with a worker's key cannot speak for another rank or order a checkpoint; the
// operator key can control the job; and the job still finishes normally.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "gtest/gtest.h"
#include "net/curve_keys.h"
#include "net/membership_client.h"
#include "ps/checkpoint.h"
#include "ps/client.h"
#include "ps/shard_map.h"
#include "tests/integration/process_test.h"

namespace towerps {
namespace {

using testing::Subprocess;
using namespace std::chrono_literals;

constexpr int64_t kAttackTimeoutMs = 1000;
// The step of the checkpoint orders that unauthorised peers forge.
constexpr int64_t kForgedStep = 7;

class SecurityTest : public testing::ProcessTest {
 protected:
  net::RpcClientOptions ClientOptions(const std::string& endpoint, const net::CurveKeys& curve) {
    net::RpcClientOptions options;
    options.endpoint = endpoint;
    options.timeout_ms = kAttackTimeoutMs;
    options.max_attempts = 1;
    options.name = "attacker";
    options.curve = curve;
    return options;
  }

  std::unique_ptr<net::MembershipClient> Scheduler(const std::string& endpoint,
                                                   const net::CurveKeys& curve) {
    auto client = net::MembershipClient::Connect(&ctx_, ClientOptions(endpoint, curve));
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? std::move(client).value() : nullptr;
  }

  // A client of the job's parameter servers with `curve` (this client's pair and
  // server 0's public key, or none).
  absl::StatusOr<std::unique_ptr<ps::PsClient>> Servers(const net::ClusterView& view,
                                                        const net::CurveKeys& curve) {
    ps::PsClientOptions options;
    options.server_endpoints = view.server_endpoints;
    options.rpc = ClientOptions(view.server_endpoints[0], curve);
    if (curve.enabled()) options.server_public_keys = {curve.server_public_key};
    options.client_id = 99;
    options.dense_params = 1;
    auto map = ps::ShardMap::FromWire(view.shard_owners, view.num_servers);
    if (!map.ok()) return map.status();
    return ps::PsClient::Create(&ctx_, options, *std::move(map));
  }

  // Orders the servers to save a checkpoint of step kForgedStep for the job.
  absl::Status OrderCheckpoint(const net::ClusterView& view, const net::CurveKeys& curve) {
    auto client = Servers(view, curve);
    if (!client.ok()) return client.status();
    return (*client)->Checkpoint(kForgedStep, view.job_id, /*restore=*/false).status();
  }

  // Pushes one huge gradient row of table 0 (examples/generated.conf: item_id, dim 32).
  absl::Status Push(const net::ClusterView& view, const net::CurveKeys& curve) {
    auto client = Servers(view, curve);
    if (!client.ok()) return client.status();
    const std::vector<uint64_t> keys = {12345};
    std::vector<float> grads(32, 1e30f);
    ps::SparseSlice slice{0, 32, keys, nullptr, grads.data(), 1.0f};
    absl::Status status = (*client)->Push({&slice, 1}, 1);
    if (!status.ok()) return status;
    return (*client)->Flush();
  }

  // `towerps ctl COMMAND` with `curve_flags`; its exit code.
  int Ctl(const std::string& name, const std::string& scheduler, const std::string& command,
          const std::vector<std::string>& curve_flags) {
    std::vector<std::string> argv = {binary_, "ctl", "--scheduler=" + scheduler,
                                     "--ctl_timeout_ms=" + std::to_string(kAttackTimeoutMs)};
    argv.insert(argv.end(), curve_flags.begin(), curve_flags.end());
    argv.push_back(command);
    Subprocess p(argv, dir_ + "/" + name + ".log");
    return p.Wait(60s).value_or(-1);
  }
};

TEST_F(SecurityTest, OnlyTheJobsKeysControlASecuredCluster) {
  Run("generate", {binary_, "generate", "--output_dir=" + dir_ + "/logs", "--users=1500",
                   "--items=500", "--interactions=60000", "--clusters=8"});
  Run("prepare", {binary_, "prepare", "--input=" + dir_ + "/logs", "--output=" + dir_ + "/ds"});
  const std::string dataset = dir_ + "/ds";
  const std::string config = source_ + "/examples/generated.conf";
  const std::string keys = dir_ + "/keys";
  // Keys for two workers; the job runs one, so worker/1's key is valid but idle.
  ASSERT_EQ(Run("keygen",
                {binary_, "keygen", "--output_dir=" + keys, "--num_servers=1", "--num_workers=2"}),
            0);
  const std::string curve_flag = "--curve_dir=" + keys;
  const std::string run_dir = dir_ + "/run";
  // Where a forged checkpoint order would write (no message can name a path).
  const std::string forged_dir = ps::CheckpointDir(run_dir + "/checkpoint", kForgedStep);

  std::unique_ptr<Subprocess> scheduler;
  const std::string sched =
      StartScheduler({"--config=" + config, "--dataset=" + dataset, "--run_dir=" + run_dir,
                      "--num_servers=1", "--num_workers=1", curve_flag},
                     &scheduler);
  ASSERT_FALSE(sched.empty());
  auto ps = StartNode({"ps", "--rank=0", curve_flag, "--run_dir=" + run_dir}, config, dataset,
                      sched, "ps.log");
  auto worker = StartNode({"worker", "--worker_rank=0", curve_flag, "--run_dir=" + run_dir}, config,
                          dataset, sched, "worker.log");

  auto op_keys = net::LoadJobKeys(keys, "operator");
  ASSERT_TRUE(op_keys.ok()) << op_keys.status();
  auto op_curve = op_keys->ClientCurve("scheduler");
  ASSERT_TRUE(op_curve.ok());
  auto op = Scheduler(sched, *op_curve);
  ASSERT_NE(op, nullptr);
  // The operator may query the cluster: wait until it trains, then pause it, so the
  // attacks below all land on a live job.
  absl::StatusOr<net::ClusterView> view;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    view = op->Query(net::kRoleWorker, -1);
    if (view.ok() && view->phase != net::kPhaseRegistering) break;
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(view.ok()) << view.status();
  ASSERT_EQ(view->phase, net::kPhaseTraining);
  ASSERT_EQ(Ctl("ctl_pause", sched, "pause", {curve_flag}), 0);

  // 1. No keys at all: nothing gets through the handshake.
  EXPECT_NE(Ctl("ctl_stop_no_keys", sched, "stop", {}), 0);
  auto plain = Scheduler(sched, net::CurveKeys());
  ASSERT_NE(plain, nullptr);
  EXPECT_EQ(plain->Clock(0, 1000000000, 1000000000, true).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(Push(*view, net::CurveKeys()).code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(OrderCheckpoint(*view, net::CurveKeys()).code(),
            absl::StatusCode::kDeadlineExceeded);

  // 2. Keys of another job (a well-formed pair the allow-list does not hold).
  const std::string foreign = dir_ + "/foreign_keys";
  ASSERT_EQ(Run("keygen_foreign", {binary_, "keygen", "--output_dir=" + foreign}), 0);
  EXPECT_NE(Ctl("ctl_stop_foreign", sched, "stop", {"--curve_dir=" + foreign}), 0);
  auto stranger = net::GenerateCurveKeys();
  ASSERT_TRUE(stranger.ok());
  stranger->server_public_key = *op_keys->PublicKeyOf("scheduler");
  auto forged = Scheduler(sched, *stranger);
  ASSERT_NE(forged, nullptr);
  EXPECT_EQ(forged->Clock(0, 1000000000, 1000000000, true).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  stranger->server_public_key = *op_keys->PublicKeyOf("ps/0");
  EXPECT_EQ(Push(*view, *stranger).code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(OrderCheckpoint(*view, *stranger).code(), absl::StatusCode::kDeadlineExceeded);

  // 3. A valid worker key speaks only for its own rank and orders no checkpoint.
  auto w1 = net::LoadJobKeys(keys, "worker/1");
  ASSERT_TRUE(w1.ok()) << w1.status();
  auto w1_sched = Scheduler(sched, *w1->ClientCurve("scheduler"));
  ASSERT_NE(w1_sched, nullptr);
  EXPECT_EQ(w1_sched->Clock(0, 1000000000, 1000000000, true).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(w1_sched->Partition(0, 0, 0, /*done=*/true).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(w1_sched->Heartbeat(net::kRoleServer, 0).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(w1_sched->Control("stop").status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(OrderCheckpoint(*view, *w1->ClientCurve("ps/0")).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_FALSE(std::filesystem::exists(forged_dir));

  // 4. The operator key controls the job: resume it; it trains to the end.
  auto status = op->Control("status");
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_NE(status->find("\"phase\":\"paused\""), std::string::npos) << *status;
  ASSERT_EQ(Ctl("ctl_resume", sched, "resume", {curve_flag}), 0);
  EXPECT_EQ(worker->Wait(180s).value_or(-1), 0);
  EXPECT_EQ(scheduler->Wait(60s).value_or(-1), 0);
  EXPECT_EQ(ps->Wait(60s).value_or(-1), 0);
  auto log = ReadFileToString(dir_ + "/scheduler.log");
  ASSERT_TRUE(log.ok());
  // Done by training, not by a forged stop or clock: a final checkpoint was written
  // and the global step is the worker's own count.
  EXPECT_NE(log->find("\"phase\":\"done\""), std::string::npos) << *log;
  EXPECT_EQ(log->find("stop requested"), std::string::npos) << *log;
  EXPECT_EQ(log->find("1000000000"), std::string::npos) << *log;
  // Strangers were refused in the handshake, the worker key by authorisation.
  EXPECT_NE(log->find("zap: refused"), std::string::npos) << *log;
  EXPECT_NE(log->find("PERMISSION_DENIED: worker/1 may not"), std::string::npos) << *log;
  EXPECT_TRUE(ps::LatestCheckpoint(run_dir + "/checkpoint").ok());
}

}  // namespace
}  // namespace towerps
