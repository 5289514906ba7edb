// A job's lifecycle with real processes on 127.0.0.1: no partition is ever left
// untrained when a worker dies, SIGTERM stops every process cleanly with a final
// checkpoint, and a dead server or scheduler brings every process down within
// seconds with one line naming the cause (docs/distributed.md, "Failures and
// shutdown").
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/file_util.h"
#include "common/status.h"
#include "gtest/gtest.h"
#include "ps/checkpoint.h"
#include "tests/integration/cluster_fixture.h"

namespace towerps {
namespace {

using testing::Subprocess;
using namespace std::chrono_literals;

class LifecycleTest : public testing::ClusterFixture {
 protected:
  // The last non-empty line of <dir>/<log>.
  std::string LastLine(const std::string& log) {
    std::string text = ReadFileToString(dir_ + "/" + log).value_or("");
    std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipWhitespace());
    return lines.empty() ? "" : lines.back();
  }
  std::string Log(const std::string& log) {
    return ReadFileToString(dir_ + "/" + log).value_or("");
  }
  // The newest complete checkpoint under <dir>/<root>, verified.
  absl::StatusOr<ps::CheckpointManifest> LatestManifest(const std::string& root) {
    TOWERPS_ASSIGN_OR_RETURN(std::string latest, ps::LatestCheckpoint(dir_ + "/" + root));
    return ps::VerifyCheckpoint(latest);
  }
  // Starts a scheduler with `flags` plus the job's files, `servers` servers and the
  // workers in `worker_flags` (one entry per worker).
  struct Cluster {
    std::unique_ptr<Subprocess> scheduler;
    std::string endpoint;
    std::vector<std::unique_ptr<Subprocess>> servers, workers;
  };
  Cluster StartCluster(const std::string& config, const std::string& dataset,
                       std::vector<std::string> flags, int servers,
                       std::vector<std::vector<std::string>> worker_flags,
                       const std::string& tag = "") {
    Cluster c;
    flags.insert(flags.begin(),
                 {"--config=" + config, "--dataset=" + dataset, "--run_dir=" + dir_ + "/run",
                  "--num_servers=" + std::to_string(servers),
                  "--num_workers=" + std::to_string(worker_flags.size())});
    c.endpoint = StartScheduler(flags, &c.scheduler, "scheduler" + tag);
    if (c.endpoint.empty()) return c;
    for (int s = 0; s < servers; ++s) {
      // 10 s (the default is 60 s, for a restarted scheduler): the killed-scheduler
      // test waits for it.
      c.servers.push_back(StartNode({"ps", "--rank=" + std::to_string(s), "--run_dir=" + dir_ + "/run",
                                     "--scheduler_timeout_ms=10000"},
                                    config, dataset, c.endpoint,
                                    "ps" + std::to_string(s) + tag + ".log"));
    }
    for (size_t w = 0; w < worker_flags.size(); ++w) {
      std::vector<std::string> argv = {"worker", "--worker_rank=" + std::to_string(w)};
      argv.insert(argv.end(), worker_flags[w].begin(), worker_flags[w].end());
      c.workers.push_back(StartNode(argv, config, dataset, c.endpoint,
                                    "worker" + std::to_string(w) + tag + ".log"));
    }
    return c;
  }
};

// Issue 12 item 2: worker 1 is SIGKILLed mid-partition and worker 0 runs out of
// data before worker 1 is declared dead. Worker 0 must stay in the job, take the
// released partition over at its reported offset, and the job must end with every
// partition done (before: "done", exit 0, partition 1 mostly untrained).
TEST_F(LifecycleTest, KilledWorkersPartitionIsTakenOverNotLost) {
  std::string dataset = MediumDataset();
  std::string config = Config("model");
  Cluster c = StartCluster(config, dataset, {"--heartbeat_timeout_ms=6000"}, 1, {{}, {}});
  ASSERT_FALSE(c.endpoint.empty());
  auto ctl = ConnectScheduler(c.endpoint);
  ASSERT_NE(ctl, nullptr);
  ASSERT_TRUE(WaitForSteps(ctl.get(), {1}, 5)) << "worker 1 never trained";
  c.workers[1]->Signal(SIGKILL);
  EXPECT_EQ(c.workers[0]->Wait(120s).value_or(-1), 0) << Log("worker0.log");
  EXPECT_EQ(c.scheduler->Wait(30s).value_or(-1), 0) << Log("scheduler.log");
  EXPECT_EQ(c.servers[0]->Wait(30s).value_or(-1), 0);
  auto manifest = LatestManifest("run/checkpoint");
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  ASSERT_EQ(manifest->partitions.size(), 2u);
  for (const auto& p : manifest->partitions) {
    EXPECT_TRUE(p.done) << "partition " << p.id << " unfinished at " << p.offset << "\n"
                        << Log("scheduler.log");
  }
  EXPECT_NE(Log("scheduler.log").find("partition 1 handed to worker 0"), std::string::npos);
}

// The only worker is SIGKILLed: nobody can finish its partition, so the job fails
// loudly (non-zero, one line naming the partition and the dead worker) instead of
// ending "done".
TEST_F(LifecycleTest, PartitionWithNoLiveWorkerFailsTheJob) {
  std::string dataset = MediumDataset();
  std::string config = Config("model", /*epochs=*/20);
  Cluster c = StartCluster(config, dataset, {"--heartbeat_timeout_ms=1500"}, 1, {{}});
  ASSERT_FALSE(c.endpoint.empty());
  auto ctl = ConnectScheduler(c.endpoint);
  ASSERT_NE(ctl, nullptr);
  ASSERT_TRUE(WaitForSteps(ctl.get(), {0}, 5));
  c.workers[0]->Signal(SIGKILL);
  EXPECT_NE(c.scheduler->Wait(30s).value_or(0), 0) << Log("scheduler.log");
  const std::string last = LastLine("scheduler.log");
  EXPECT_NE(last.find("partitions 0 (at example"), std::string::npos) << last;
  EXPECT_NE(last.find("dead workers: 0"), std::string::npos) << last;
  EXPECT_NE(c.servers[0]->Wait(30s).value_or(0), 0);
}

// SIGTERM to the scheduler of a running cluster: the workers report their progress
// and leave, the scheduler writes a final checkpoint with it, every process exits
// 0, and --resume=latest finishes the job from there.
TEST_F(LifecycleTest, SigtermToTheSchedulerStopsTheJobWithAFinalCheckpoint) {
  std::string dataset = MediumDataset();
  std::string config = Config("model");
  const std::vector<std::string> flags = {"--num_partitions=2", "--heartbeat_timeout_ms=5000"};
  {
    Cluster c = StartCluster(config, dataset, flags, 1, {{}, {}});
    ASSERT_FALSE(c.endpoint.empty());
    auto ctl = ConnectScheduler(c.endpoint);
    ASSERT_NE(ctl, nullptr);
    ASSERT_TRUE(WaitForSteps(ctl.get(), {0, 1}, 25));
    // Paused so that the job cannot finish on its own before the signal lands.
    ASSERT_TRUE(ctl->Control("pause").ok());
    c.scheduler->Signal(SIGTERM);
    EXPECT_EQ(c.scheduler->Wait(30s).value_or(-1), 0) << Log("scheduler.log");
    for (size_t w = 0; w < c.workers.size(); ++w) {
      EXPECT_EQ(c.workers[w]->Wait(30s).value_or(-1), 0)
          << Log("worker" + std::to_string(w) + ".log");
    }
    EXPECT_EQ(c.servers[0]->Wait(30s).value_or(-1), 0) << Log("ps0.log");
  }
  auto manifest = LatestManifest("run/checkpoint");
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  ASSERT_EQ(manifest->partitions.size(), 2u);
  for (const auto& p : manifest->partitions) {
    EXPECT_FALSE(p.done);
    EXPECT_GT(p.offset, 0) << "partition " << p.id << ": progress not reported";
  }
  std::vector<std::string> resume = flags;
  resume.push_back("--resume=latest");
  Cluster c = StartCluster(config, dataset, resume, 1, {{}, {}}, "b");
  ASSERT_FALSE(c.endpoint.empty());
  for (size_t w = 0; w < c.workers.size(); ++w) {
    EXPECT_EQ(c.workers[w]->Wait(120s).value_or(-1), 0);
  }
  EXPECT_EQ(c.scheduler->Wait(30s).value_or(-1), 0);
  auto final_manifest = LatestManifest("run/checkpoint");
  ASSERT_TRUE(final_manifest.ok()) << final_manifest.status();
  EXPECT_GT(final_manifest->step, manifest->step);
  for (const auto& p : final_manifest->partitions) EXPECT_TRUE(p.done) << p.id;
  const std::string from = "partition 0 from example ";
  const std::string worker_log = Log("worker0b.log") + Log("worker1b.log");
  const size_t at = worker_log.find(from);
  ASSERT_NE(at, std::string::npos) << worker_log;
  EXPECT_GT(std::atoll(worker_log.c_str() + at + from.size()), 0);
}

// A parameter server is SIGKILLed and nothing replaces it: once the recovery
// timeout passes the scheduler fails the job and every worker exits non-zero within
// seconds (not after its 3 x 30 s of retries), naming the dead server in its last line.
TEST_F(LifecycleTest, KilledServerEndsEveryProcessWithTheCause) {
  std::string dataset = MediumDataset();
  std::string config = Config("model", /*epochs=*/20);
  Cluster c = StartCluster(config, dataset,
                           {"--heartbeat_timeout_ms=1500", "--recovery_timeout_ms=2000"}, 2,
                           {{}, {}});
  ASSERT_FALSE(c.endpoint.empty());
  auto ctl = ConnectScheduler(c.endpoint);
  ASSERT_NE(ctl, nullptr);
  ASSERT_TRUE(WaitForSteps(ctl.get(), {0, 1}, 5));
  c.servers[1]->Signal(SIGKILL);
  EXPECT_NE(c.scheduler->Wait(30s).value_or(0), 0);
  EXPECT_NE(LastLine("scheduler.log").find("parameter server 1 is dead"), std::string::npos)
      << LastLine("scheduler.log");
  for (size_t w = 0; w < c.workers.size(); ++w) {
    const std::string log = "worker" + std::to_string(w) + ".log";
    EXPECT_NE(c.workers[w]->Wait(15s).value_or(0), 0) << log << " still running";
    EXPECT_NE(LastLine(log).find("the job failed: parameter server 1 is dead"), std::string::npos)
        << LastLine(log);
  }
  EXPECT_NE(c.servers[0]->Wait(15s).value_or(0), 0);
  EXPECT_NE(LastLine("ps0.log").find("parameter server 1 is dead"), std::string::npos)
      << LastLine("ps0.log");
}

// The scheduler is SIGKILLed and nothing restarts it: servers and workers give up
// after --scheduler_timeout_ms (10 s here; default 60 s, the time a restarted
// scheduler has to come back), saying which scheduler went silent.
TEST_F(LifecycleTest, KilledSchedulerEndsEveryProcessWithinTheTimeout) {
  std::string dataset = MediumDataset();
  std::string config = Config("model", /*epochs=*/20);
  Cluster c = StartCluster(config, dataset, {}, 1,
                           {{"--scheduler_timeout_ms=10000"}, {"--scheduler_timeout_ms=10000"}});
  ASSERT_FALSE(c.endpoint.empty());
  auto ctl = ConnectScheduler(c.endpoint);
  ASSERT_NE(ctl, nullptr);
  ASSERT_TRUE(WaitForSteps(ctl.get(), {0, 1}, 5));
  c.scheduler->Signal(SIGKILL);
  const std::string expected = "the scheduler at " + c.endpoint + " has not answered for";
  for (size_t w = 0; w < c.workers.size(); ++w) {
    const std::string log = "worker" + std::to_string(w) + ".log";
    EXPECT_NE(c.workers[w]->Wait(20s).value_or(0), 0) << log << " still running";
    EXPECT_NE(LastLine(log).find(expected), std::string::npos) << LastLine(log);
  }
  EXPECT_NE(c.servers[0]->Wait(20s).value_or(0), 0) << "ps 0 still running";
  EXPECT_NE(LastLine("ps0.log").find(expected), std::string::npos) << LastLine("ps0.log");
}

// `towerps train` (embedded) on SIGTERM finishes its step, writes a checkpoint of
// the steps done and exits 0; the checkpoint verifies and `evaluate` loads it.
TEST_F(LifecycleTest, SigtermToTrainWritesALoadableCheckpoint) {
  std::string dataset = MediumDataset();
  std::string config = Config("model", /*epochs=*/50);
  Subprocess train({binary_, "train", "--config=" + config, "--dataset=" + dataset,
                    "--run_dir=" + dir_ + "/embedded", "--threads=1"},
                   dir_ + "/train.log");
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (Log("train.log").find("step ") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_NE(Log("train.log").find("step "), std::string::npos) << "train never reported progress";
  train.Signal(SIGTERM);
  ASSERT_EQ(train.Wait(60s).value_or(-1), 0) << Log("train.log");
  EXPECT_NE(Log("train.log").find("stopped early on request"), std::string::npos)
      << Log("train.log");
  auto latest = ps::LatestCheckpoint(dir_ + "/embedded/checkpoint");
  ASSERT_TRUE(latest.ok()) << latest.status();
  auto manifest = ps::VerifyCheckpoint(*latest);
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_GT(manifest->step, 0);
  EXPECT_EQ(Run("evaluate", {binary_, "evaluate", "--config=" + config, "--dataset=" + dataset,
                             "--checkpoint=" + *latest}),
            0);
}

// A worker's own SIGTERM: it finishes its step, reports its partition's progress,
// leaves and exits 143 (stopped, not done: a launcher may start the rank again); the
// other worker takes the partition over from that offset
// and the job finishes with every partition done.
TEST_F(LifecycleTest, SigtermToAWorkerHandsItsPartitionOverAtItsProgress) {
  std::string dataset = MediumDataset();
  std::string config = Config("model", /*epochs=*/3);
  Cluster c = StartCluster(config, dataset, {"--heartbeat_timeout_ms=5000"}, 1, {{}, {}});
  ASSERT_FALSE(c.endpoint.empty());
  auto ctl = ConnectScheduler(c.endpoint);
  ASSERT_NE(ctl, nullptr);
  ASSERT_TRUE(WaitForSteps(ctl.get(), {1}, 25));
  c.workers[1]->Signal(SIGTERM);
  EXPECT_EQ(c.workers[1]->Wait(30s).value_or(-1), 143) << Log("worker1.log");
  const std::string reported = "partition 1 reported at example ";
  const std::string worker1 = Log("worker1.log");
  const size_t at = worker1.find(reported);
  ASSERT_NE(at, std::string::npos) << worker1;
  const int64_t offset = std::atoll(worker1.c_str() + at + reported.size());
  EXPECT_GT(offset, 0);
  EXPECT_EQ(c.workers[0]->Wait(120s).value_or(-1), 0) << Log("worker0.log");
  EXPECT_EQ(c.scheduler->Wait(30s).value_or(-1), 0) << Log("scheduler.log");
  EXPECT_NE(Log("scheduler.log")
                .find("partition 1 handed to worker 0 at offset " + std::to_string(offset)),
            std::string::npos)
      << Log("scheduler.log");
  auto manifest = LatestManifest("run/checkpoint");
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  for (const auto& p : manifest->partitions) EXPECT_TRUE(p.done) << p.id;
}

// SIGTERM to deploy/local.sh and every process it started at once, as Slurm and
// Kubernetes do: the servers serve on until the scheduler's final checkpoint, which
// holds the workers' reported progress; everything exits and local.sh says 143.
TEST_F(LifecycleTest, SigtermToAWholeLocalClusterEndsWithAFinalCheckpoint) {
  std::string dataset = MediumDataset();
  std::string config = Config("model", /*epochs=*/20);
  const std::string run = dir_ + "/cluster";
  Subprocess cluster({source_ + "/deploy/local.sh", "--config", config, "--dataset", dataset,
                      "--run_dir", run, "--servers", "1", "--workers", "2", "--towerps", binary_},
                     dir_ + "/local.log");
  std::string endpoint;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (endpoint.empty() && std::chrono::steady_clock::now() < deadline) {
    endpoint = std::string(absl::StripTrailingAsciiWhitespace(
        ReadFileToString(run + "/scheduler.endpoint").value_or("")));
    if (endpoint.empty()) std::this_thread::sleep_for(20ms);
  }
  ASSERT_FALSE(endpoint.empty()) << Log("local.log");
  auto ctl = ConnectScheduler(endpoint);
  ASSERT_NE(ctl, nullptr);
  ASSERT_TRUE(WaitForSteps(ctl.get(), {0, 1}, 25)) << Log("local.log");
  cluster.Signal(SIGTERM);  // the whole process group
  EXPECT_EQ(cluster.Wait(60s).value_or(-1), 143) << Log("local.log");
  for (int i = 0; i < 250 && cluster.GroupAlive(); ++i) std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(cluster.GroupAlive()) << "processes left behind";
  auto manifest = LatestManifest("cluster/checkpoint");
  ASSERT_TRUE(manifest.ok()) << manifest.status() << "\n" << Log("local.log");
  for (const auto& p : manifest->partitions) {
    EXPECT_GT(p.offset, 0) << "partition " << p.id << ": progress not reported";
  }
}

// SIGTERM to a worker still waiting for the cluster to form (a server never came):
// it leaves at once (exit 143) instead of waiting out --cluster_timeout.
TEST_F(LifecycleTest, SigtermWhileWaitingForTheClusterExitsCleanly) {
  std::string dataset = SmallDataset();
  std::string config = Config("model");
  std::unique_ptr<Subprocess> scheduler;
  std::string endpoint =
      StartScheduler({"--config=" + config, "--dataset=" + dataset, "--run_dir=" + dir_ + "/run",
                      "--num_servers=1", "--num_workers=1"},
                     &scheduler);
  ASSERT_FALSE(endpoint.empty());
  auto worker = StartNode({"worker"}, config, dataset, endpoint, "worker0.log");
  auto ctl = ConnectScheduler(endpoint);
  ASSERT_NE(ctl, nullptr);
  bool registered = false;
  for (int i = 0; i < 1500 && !registered; ++i) {
    auto status = ctl->Control("status");
    registered = status.ok() && status->find("{\"rank\":0,\"alive\":true") != std::string::npos;
    if (!registered) std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(registered) << Log("worker0.log");
  worker->Signal(SIGTERM);
  EXPECT_EQ(worker->Wait(20s).value_or(-1), 143) << Log("worker0.log");
  EXPECT_NE(Log("worker0.log").find("stopped before training started"), std::string::npos)
      << Log("worker0.log");
}

}  // namespace
}  // namespace towerps
