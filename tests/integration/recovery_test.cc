// Recovery with real processes on 127.0.0.1 (docs/distributed.md, "Recovery"): one
// server, one worker or the scheduler is killed with SIGKILL mid-job and started
// again with the same role and rank (as a supervisor does); the job finishes by
// itself and every process exits 0.
#include <signal.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/file_util.h"
#include "gtest/gtest.h"
#include "ps/checkpoint.h"
#include "tests/integration/cluster_fixture.h"

namespace towerps {
namespace {

using testing::Subprocess;
using namespace std::chrono_literals;

class RecoveryTest : public testing::ClusterFixture {
 protected:
  void SetUp() override {
    ClusterFixture::SetUp();
    if (HasFatalFailure()) return;
    dataset_ = SmallDataset();
    config_ = Config("model", /*epochs=*/3);
    run_ = dir_ + "/run";
  }
  std::string Log(const std::string& log) {
    return ReadFileToString(dir_ + "/" + log).value_or("");
  }

  // A job of 2 servers and `workers` workers with checkpoints every 20 steps; `extra`
  // flags for the scheduler (--recover is always given, as supervisors do).
  void StartJob(std::vector<std::string> extra = {}, int workers = 2) {
    num_workers_ = workers;
    scheduler_flags_ = {"--config=" + config_,
                        "--dataset=" + dataset_,
                        "--run_dir=" + run_,
                        "--num_servers=2",
                        "--num_workers=" + std::to_string(workers),
                        "--num_partitions=2",
                        "--heartbeat_timeout_ms=1500",
                        "--checkpoint_every_steps=20",
                        "--recover"};
    scheduler_flags_.insert(scheduler_flags_.end(), extra.begin(), extra.end());
    endpoint_ = StartScheduler(scheduler_flags_, &scheduler_, "scheduler");
    ASSERT_FALSE(endpoint_.empty());
    for (int s = 0; s < 2; ++s) servers_.push_back(Server(s, "ps" + std::to_string(s) + ".log"));
    for (int w = 0; w < workers; ++w) {
      workers_.push_back(Worker(w, "worker" + std::to_string(w) + ".log"));
    }
    ctl_ = ConnectScheduler(endpoint_);
    ASSERT_NE(ctl_, nullptr);
  }
  std::unique_ptr<Subprocess> Server(int rank, const std::string& log) {
    return StartNode({"ps", "--rank=" + std::to_string(rank), "--run_dir=" + run_}, config_,
                     dataset_, endpoint_, log);
  }
  // With the default request timeout (30 s): a request in flight to a killed server
  // is abandoned when the replacement's epoch is announced, not after its deadline.
  std::unique_ptr<Subprocess> Worker(int rank, const std::string& log) {
    return StartNode({"worker", "--worker_rank=" + std::to_string(rank), "--run_dir=" + run_,
                      "--worker_log_losses"},
                     config_, dataset_, endpoint_, log);
  }
  // Waits until every worker trained and a checkpoint past step `min_step` is complete.
  void WaitForProgress(int64_t min_step = 20) {
    std::vector<int> ranks;
    for (int w = 0; w < num_workers_; ++w) ranks.push_back(w);
    ASSERT_TRUE(WaitForSteps(ctl_.get(), ranks, 10)) << "no progress";
    int64_t step = -1;
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (step < min_step && std::chrono::steady_clock::now() < deadline) {
      auto latest = ps::LatestCheckpoint(run_ + "/checkpoint");
      if (latest.ok()) step = ps::ReadManifest(*latest)->step;
      std::this_thread::sleep_for(20ms);
    }
    ASSERT_GE(step, min_step) << "no checkpoint was written";
  }
  static void KillNow(Subprocess* p) {
    p->Signal(SIGKILL);
    ASSERT_TRUE(p->Wait(10s).has_value());
  }
  // Every process of the job exits 0 and the job's final checkpoint covers every
  // partition.
  void ExpectFinished() {
    EXPECT_EQ(scheduler_->Wait(240s).value_or(-1), 0) << Log("scheduler.log");
    for (size_t w = 0; w < workers_.size(); ++w) {
      EXPECT_EQ(workers_[w]->Wait(30s).value_or(-1), 0) << "worker " << w;
    }
    for (size_t s = 0; s < servers_.size(); ++s) {
      EXPECT_EQ(servers_[s]->Wait(30s).value_or(-1), 0) << "server " << s;
    }
    auto latest = ps::LatestCheckpoint(run_ + "/checkpoint");
    ASSERT_TRUE(latest.ok()) << latest.status();
    auto manifest = ps::VerifyCheckpoint(*latest);
    ASSERT_TRUE(manifest.ok()) << manifest.status();
    for (const auto& p : manifest->partitions) EXPECT_TRUE(p.done) << "partition " << p.id;
    EXPECT_NE(ReadFileToString(run_ + "/scheduler.job").value_or("").find("state done"),
              std::string::npos);
  }

  // The last loss worker 0 logged for each step (a replayed step: its last one).
  std::map<int64_t, double> Losses() {
    std::map<int64_t, double> losses;
    const std::string text = ReadFileToString(run_ + "/losses-worker-0.tsv").value_or("");
    for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
      std::vector<std::string> cols = absl::StrSplit(line, '\t');
      int64_t step = 0;
      double loss = 0;
      if (cols.size() == 2 && absl::SimpleAtoi(cols[0], &step) &&
          absl::SimpleAtod(cols[1], &loss)) {
        losses[step] = loss;
      }
    }
    return losses;
  }
  // Ends the processes of a finished job, for another one in the same test.
  void Reset() {
    ctl_.reset();
    workers_.clear();
    servers_.clear();
    scheduler_.reset();
  }

  int num_workers_ = 2;
  std::string dataset_, config_, run_, endpoint_;
  std::vector<std::string> scheduler_flags_;
  std::unique_ptr<Subprocess> scheduler_;
  std::vector<std::unique_ptr<Subprocess>> servers_, workers_;
  std::unique_ptr<net::MembershipClient> ctl_;
};

// An asynchronous job: only ps/1 restores its files of the newest checkpoint. The
// workers, whose requests to ps/1 were in flight or queued when it was killed, train
// again within seconds of the replacement's start, far within their 30 s request
// timeout (a functional bound: they do not wait out the deadline).
TEST_F(RecoveryTest, KilledServerIsReplaced) {
  StartJob();
  WaitForProgress();
  KillNow(servers_[1].get());
  std::vector<int64_t> at_kill;
  for (int w = 0; w < num_workers_; ++w) at_kill.push_back(WorkerSteps(ctl_.get(), w));
  servers_[1] = Server(1, "ps1b.log");
  const auto replaced = std::chrono::steady_clock::now();
  for (int w = 0; w < num_workers_; ++w) {
    // Asynchronous workers report their clock every 4 steps: 8 more is training again.
    while (WorkerSteps(ctl_.get(), w) < at_kill[w] + 8 &&
           std::chrono::steady_clock::now() - replaced < 15s) {
      std::this_thread::sleep_for(20ms);
    }
    EXPECT_GE(WorkerSteps(ctl_.get(), w), at_kill[w] + 8)
        << "worker " << w << " is not training 15 s after the replacement started";
  }
  ExpectFinished();
  const std::string log = Log("scheduler.log");
  EXPECT_NE(log.find("ps/1 is dead"), std::string::npos);
  EXPECT_NE(log.find("recovered in"), std::string::npos);
  EXPECT_NE(Log("ps1b.log").find("restored from"), std::string::npos);
  EXPECT_EQ(Log("ps0.log").find("restored from"), std::string::npos) << "ps/0 kept its state";
}

// A synchronous job rolls back to its checkpoint: every server restores it.
TEST_F(RecoveryTest, KilledServerRollsASyncJobBack) {
  StartJob({"--staleness=0"});
  WaitForProgress();
  KillNow(servers_[0].get());
  servers_[0] = Server(0, "ps0b.log");
  ExpectFinished();
  EXPECT_NE(Log("scheduler.log").find("rolled back to global step"), std::string::npos);
  EXPECT_NE(Log("ps1.log").find("restored from"), std::string::npos);
}

// A synchronous job that rolled back replays the unfaulted run exactly (one worker:
// the servers apply the pushes in one order): as many steps, each with the unfaulted
// loss (the restored parameters, optimizer state and partition offsets are the
// checkpoint's, the extra negatives and the LR scale depend only on the step, and no
// push of the interrupted step reaches a restored server).
TEST_F(RecoveryTest, RolledBackSyncJobEndsWithTheUnfaultedLoss) {
  // Dense gradients averaged over 4 steps: a checkpoint between two dense pushes
  // would lose the worker's accumulated gradients, so the scheduler aligns them.
  config_ = Config("model_sync4", /*epochs=*/3, "dense_sync_every=4");
  run_ = dir_ + "/unfaulted";
  StartJob({"--staleness=0"}, /*workers=*/1);
  ExpectFinished();
  const std::map<int64_t, double> unfaulted = Losses();
  ASSERT_GT(unfaulted.size(), 100u);
  Reset();

  run_ = dir_ + "/faulted";
  StartJob({"--staleness=0"}, /*workers=*/1);
  WaitForProgress(/*min_step=*/40);
  KillNow(servers_[1].get());
  servers_[1] = Server(1, "ps1b.log");
  ExpectFinished();
  const std::string log = Log("scheduler.log");
  const std::string rolled = "rolled back to global step ";
  const size_t at = log.rfind(rolled);
  ASSERT_NE(at, std::string::npos);
  const int64_t rollback_step = std::atoll(log.c_str() + at + rolled.size());
  const std::map<int64_t, double> faulted = Losses();
  ASSERT_EQ(faulted.size(), unfaulted.size()) << "the rolled-back job trains as many steps";
  ASSERT_TRUE(faulted.count(rollback_step));
  EXPECT_EQ(rollback_step % 4, 0) << "checkpoints at multiples of dense_sync_every";
  int differing = 0;
  for (const auto& [step, loss] : unfaulted) {
    ASSERT_TRUE(faulted.count(step)) << "step " << step;
    if (std::abs(faulted.at(step) - loss) > 1e-6 && differing++ < 5) {
      ADD_FAILURE() << "step " << step << " (rolled back to " << rollback_step
                    << "): loss " << faulted.at(step) << ", unfaulted " << loss;
    }
  }
  EXPECT_EQ(differing, 0);
  EXPECT_NEAR(faulted.rbegin()->second, unfaulted.rbegin()->second, 1e-6) << "the final loss";
}

// A replaced worker takes the dead rank's place, clock and partitions.
TEST_F(RecoveryTest, KilledWorkerIsReplaced) {
  StartJob();
  WaitForProgress();
  KillNow(workers_[1].get());
  workers_[1] = Worker(1, "worker1b.log");
  ExpectFinished();
}

// A restarted scheduler (--recover) binds the same endpoint and adopts the job; the
// nodes register again and carry on.
TEST_F(RecoveryTest, KilledSchedulerIsReplaced) {
  StartJob();
  WaitForProgress();
  KillNow(scheduler_.get());
  const std::string endpoint = StartScheduler(scheduler_flags_, &scheduler_, "scheduler_b");
  EXPECT_EQ(endpoint, endpoint_);
  EXPECT_EQ(scheduler_->Wait(240s).value_or(-1), 0) << Log("scheduler_b.log");
  EXPECT_NE(Log("scheduler_b.log").find("recovering the running job"), std::string::npos);
  for (size_t w = 0; w < workers_.size(); ++w) {
    EXPECT_EQ(workers_[w]->Wait(30s).value_or(-1), 0) << "worker " << w;
  }
  for (size_t s = 0; s < servers_.size(); ++s) {
    EXPECT_EQ(servers_[s]->Wait(30s).value_or(-1), 0) << "server " << s;
    EXPECT_NE(Log("ps" + std::to_string(s) + ".log").find("registered again"), std::string::npos);
  }
}

}  // namespace
}  // namespace towerps
