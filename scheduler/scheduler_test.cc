#include "scheduler/scheduler.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <thread>

#include "absl/strings/str_format.h"
#include "common/file_util.h"
#include "gtest/gtest.h"
#include "ps/checkpoint.h"
#include "ps/server.h"
#include "scheduler/test_util.h"

namespace towerps::scheduler {
namespace {

using net::wire::Envelope;

// A scheduler for 1 server + 1 worker, a real parameter server behind RPC, and a
// client playing the worker.
class SchedulerServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::path(::testing::TempDir()) /
            ("sched_test_" + std::to_string(::getpid()));
    ASSERT_TRUE(RemoveAll(root_).ok());
    events_ = root_ + ".events.jsonl";
    ASSERT_TRUE(RemoveAll(events_).ok());
    ps::ParameterServerOptions& ps_options = ps_options_;
    sparse_emb::TableConfig table;
    table.dim = 4;
    ps_options.tables = {table};
    ps_options.dense_params = 3;
    auto ps = ps::ParameterServer::Create(ps_options, nullptr);
    ASSERT_TRUE(ps.ok());
    ps_ = std::move(ps).value();
    auto rpc = net::RpcServer::Start(
        &ctx_, net::RpcServerOptions(),
        [this](const net::Peer&, const Envelope::Reader& r) { return ps_->Handle(r); }, nullptr);
    ASSERT_TRUE(rpc.ok());
    ps_rpc_ = std::move(rpc).value();

    SchedulerOptions options;
    options.job.num_servers = 1;
    options.job.num_workers = 1;
    options.job.num_partitions = 2;
    options.job.staleness = 0;
    options.num_virtual_shards = 16;
    options.lr_scale.base_lr = 1.0;
    options.lr_scale.warmup_steps = 10;
    options.checkpoint_root = root_;
    options.dense_params = 3;
    options.monitor_interval_ms = 20;
    options.events_path = events_;
    options.config_path = "examples/generated.conf";
    options.dataset_path = "data/generated";
    options.planned_steps = 6;
    Customize(&options);
    auto scheduler = Scheduler::Start(&ctx_, options, &metrics_, &clock_);
    ASSERT_TRUE(scheduler.ok()) << scheduler.status();
    scheduler_ = std::move(scheduler).value();
    net::RpcClientOptions client;
    client.endpoint = scheduler_->endpoint();
    auto c = net::RpcClient::Connect(&ctx_, client);
    ASSERT_TRUE(c.ok());
    client_ = std::move(c).value();
  }
  // Options of a derived fixture's scheduler.
  virtual void Customize(SchedulerOptions* /*options*/) {}

  void TearDown() override {
    scheduler_.reset();
    (void)RemoveAll(root_);
    (void)RemoveAll(events_);
  }

  absl::StatusOr<net::Message> Call(const std::function<void(Envelope::Body::Builder)>& fill) {
    return CallScheduler(client_.get(), fill);
  }

  absl::StatusOr<net::Message> Partition(int rank, int partition, int64_t offset, bool done) {
    return Call([&](Envelope::Body::Builder b) {
      auto p = b.initPartition();
      p.setRank(rank);
      p.setPartition(partition);
      p.setOffset(offset);
      p.setDone(done);
    });
  }

  // Worker `rank` reports `steps` finished steps and leaves the job.
  absl::StatusOr<net::Message> Leave(int rank, int64_t steps) {
    return Call([&](Envelope::Body::Builder b) {
      auto c = b.initClock();
      c.setRank(rank);
      c.setFinishedSteps(steps);
      c.setNextStep(steps);
      c.setFinished(true);
    });
  }

  absl::StatusOr<net::Message> Heartbeat(uint8_t role, int rank) {
    return Call([&](Envelope::Body::Builder b) {
      auto h = b.initHeartbeat();
      h.setRole(role);
      h.setRank(rank);
    });
  }

  // Registers the real server and one worker (rank 0): training starts.
  // The server learns the job's id at registration, as PsNode does (no request has
  // reached it yet, so it can be rebuilt with it), and writes under root_.
  void AdoptJob(uint64_t job_id) {
    ps_options_.job_id = job_id;
    ps_options_.checkpoint_root = root_;
    ps_ = ps::ParameterServer::Create(ps_options_, nullptr).value();
  }

  void RegisterBoth() {
    auto reg = Call([&](Envelope::Body::Builder b) {
      auto r = b.initRegister();
      r.setRole(0);
      r.setRank(-1);
      r.setEndpoint(ps_rpc_->endpoint().c_str());
    });
    ASSERT_TRUE(reg.ok()) << reg.status();
    AdoptJob(reg->envelope().getBody().getRegisterReply().getJobId());
    ASSERT_TRUE(Call([&](Envelope::Body::Builder b) {
                  auto r = b.initRegister();
                  r.setRole(1);
                  r.setRank(-1);
                }).ok());
  }

  // Polls the server's heartbeat until the scheduler reports `phase` (5 s at most).
  net::wire::ClockReply::Reader WaitForPhase(Phase phase, std::optional<net::Message>* keep) {
    for (int i = 0; i < 500; ++i) {
      auto beat = Heartbeat(0, 0);
      if (beat.ok() &&
          beat->envelope().getBody().getClockReply().getPhase() == static_cast<uint8_t>(phase)) {
        *keep = std::move(beat).value();
        return (*keep)->envelope().getBody().getClockReply();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "the scheduler never reached phase " << PhaseName(phase);
    *keep = std::nullopt;
    return net::wire::ClockReply::Reader();
  }

  absl::StatusOr<net::Message> Control(const std::string& command) {
    return Call([&](Envelope::Body::Builder b) { b.initControl().setCommand(command.c_str()); });
  }

  net::ZmqContext ctx_;
  MetricsRegistry metrics_;
  FakeClock clock_;  // frozen unless a test advances it: nobody is declared dead
  std::string root_;
  std::string events_;  // the scheduler's events.jsonl
  ps::ParameterServerOptions ps_options_;
  std::unique_ptr<ps::ParameterServer> ps_;
  std::unique_ptr<net::RpcServer> ps_rpc_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<net::RpcClient> client_;
};

TEST_F(SchedulerServiceTest, WholeJobLifecycle) {
  auto reg = Call([&](Envelope::Body::Builder b) {
    auto r = b.initRegister();
    r.setRole(0);
    r.setRank(-1);
    r.setEndpoint(ps_rpc_->endpoint().c_str());
  });
  ASSERT_TRUE(reg.ok()) << reg.status();
  EXPECT_EQ(reg->envelope().getBody().getRegisterReply().getPhase(),
            static_cast<uint8_t>(Phase::kRegistering));
  const uint64_t job_id = reg->envelope().getBody().getRegisterReply().getJobId();
  EXPECT_NE(job_id, 0u);
  EXPECT_EQ(reg->envelope().getBody().getRegisterReply().getRestoreStep(), -1);
  AdoptJob(job_id);
  reg = Call([&](Envelope::Body::Builder b) {
    auto r = b.initRegister();
    r.setRole(1);
    r.setRank(-1);
  });
  ASSERT_TRUE(reg.ok());
  auto cluster = reg->envelope().getBody().getRegisterReply();
  EXPECT_EQ(cluster.getPhase(), static_cast<uint8_t>(Phase::kTraining));
  ASSERT_EQ(cluster.getServerEndpoints().size(), 1u);
  EXPECT_EQ(std::string(cluster.getServerEndpoints()[0].cStr()), ps_rpc_->endpoint());
  EXPECT_EQ(cluster.getShardOwners().size(), 32u);  // 16 virtual shards x u16

  // Clock: warmup scale grows with the global step.
  auto clock = Call([](Envelope::Body::Builder b) {
    auto c = b.initClock();
    c.setRank(0);
    c.setFinishedSteps(4);
    c.setNextStep(4);
  });
  ASSERT_TRUE(clock.ok());
  EXPECT_TRUE(clock->envelope().getBody().getClockReply().getMayStart());
  EXPECT_EQ(clock->envelope().getBody().getClockReply().getGlobalStep(), 4);
  EXPECT_FLOAT_EQ(clock->envelope().getBody().getClockReply().getLrScale(), 0.5f);

  // Partitions: 0 then 1, then none.
  auto part = Partition(0, -1, 0, false);
  ASSERT_TRUE(part.ok());
  EXPECT_EQ(part->envelope().getBody().getPartitionReply().getPartition(), 0);

  // Control: pause stops the clock, resume restarts it, unknown commands are refused.
  ASSERT_TRUE(Control("pause").ok());
  clock = Call([](Envelope::Body::Builder b) {
    auto c = b.initClock();
    c.setRank(0);
    c.setFinishedSteps(4);
    c.setNextStep(4);
  });
  EXPECT_FALSE(clock->envelope().getBody().getClockReply().getMayStart());
  ASSERT_TRUE(Control("resume").ok());
  EXPECT_EQ(Control("explode").status().code(), absl::StatusCode::kInvalidArgument);
  auto status = Control("status");
  ASSERT_TRUE(status.ok());
  std::string json = status->envelope().getBody().getControlReply().getStatusJson().cStr();
  EXPECT_NE(json.find("\"phase\":\"training\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"global_step\":4"), std::string::npos) << json;

  // The worker reads both partitions, then leaves: the scheduler writes a verified
  // final checkpoint and is done.
  part = Partition(0, 0, 100, true);
  ASSERT_TRUE(part.ok());
  EXPECT_EQ(part->envelope().getBody().getPartitionReply().getPartition(), 1);
  part = Partition(0, 1, 100, true);
  ASSERT_TRUE(part.ok());
  EXPECT_EQ(part->envelope().getBody().getPartitionReply().getPartition(), -1);
  EXPECT_FALSE(part->envelope().getBody().getPartitionReply().getWait()) << "no data is left";
  ASSERT_TRUE(Leave(0, 6).ok());
  ASSERT_TRUE(scheduler_->WaitUntilDone().ok());
  auto latest = ps::LatestCheckpoint(root_);
  ASSERT_TRUE(latest.ok()) << latest.status();
  auto manifest = ps::VerifyCheckpoint(*latest);
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_EQ(manifest->job_id, job_id);
  EXPECT_EQ(manifest->step, 6);
  EXPECT_EQ(manifest->files.size(), 2u);
  EXPECT_NE(scheduler_->StatusJson().find("\"phase\":\"done\""), std::string::npos);
}

TEST_F(SchedulerServiceTest, BadRequestsAreRefused) {
  auto bad_role = Call([](Envelope::Body::Builder b) { b.initRegister().setRole(7); });
  EXPECT_EQ(bad_role.status().code(), absl::StatusCode::kInvalidArgument);
  auto unknown_worker = Call([](Envelope::Body::Builder b) { b.initClock().setRank(3); });
  EXPECT_EQ(unknown_worker.status().code(), absl::StatusCode::kNotFound);
  auto wrong_kind = Call([](Envelope::Body::Builder b) { b.initPullDense(); });
  EXPECT_EQ(wrong_kind.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Control("status").ok());  // still serving
}

// SIGTERM / `ctl stop`: the job moves to stopping (with the reason), waits for the
// worker to report its progress and leave, writes the final checkpoint with that
// progress, and is done.
TEST_F(SchedulerServiceTest, StopWaitsForProgressThenCheckpoints) {
  RegisterBoth();
  ASSERT_EQ(Partition(0, -1, 0, false)->envelope().getBody().getPartitionReply().getPartition(), 0);
  scheduler_->RequestStop("stopped by the test");
  std::optional<net::Message> keep;
  auto stopping = WaitForPhase(Phase::kStopping, &keep);
  ASSERT_TRUE(keep.has_value());
  EXPECT_EQ(std::string(stopping.getReason().cStr()), "stopped by the test");
  auto next = Partition(0, 0, 321, false);  // the exact progress, then leave
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->envelope().getBody().getPartitionReply().getPartition(), -1);
  EXPECT_FALSE(next->envelope().getBody().getPartitionReply().getWait());
  ASSERT_TRUE(Leave(0, 3).ok());
  ASSERT_TRUE(scheduler_->WaitUntilDone().ok());
  auto latest = ps::LatestCheckpoint(root_);
  ASSERT_TRUE(latest.ok()) << latest.status();
  auto manifest = ps::VerifyCheckpoint(*latest);
  ASSERT_TRUE(manifest.ok());
  ASSERT_EQ(manifest->partitions.size(), 2u);
  EXPECT_EQ(manifest->partitions[0].offset, 321);
  EXPECT_FALSE(manifest->partitions[0].done);
}

// The only worker goes silent holding unfinished partitions: once it is declared
// dead and no worker registers within the grace, the job fails, and the servers'
// heartbeats carry the reason.
TEST_F(SchedulerServiceTest, PartitionsWithNoLiveWorkerFailTheJob) {
  RegisterBoth();
  ASSERT_TRUE(Partition(0, 0, 50, false).ok());
  clock_.AdvanceMicros(11'000'000);  // past heartbeat_timeout_ms (10 s): worker 0 is dead
  ASSERT_TRUE(Heartbeat(0, 0).ok());
  for (int i = 0; i < 500 && scheduler_->StatusJson().find(
                                 "{\"rank\":0,\"alive\":false,\"steps\"") == std::string::npos;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_NE(scheduler_->StatusJson().find("{\"rank\":0,\"alive\":false,\"steps\""),
            std::string::npos)
      << "worker 0 was not declared dead";
  clock_.AdvanceMicros(11'000'000);  // the grace passes with nobody to take them
  ASSERT_TRUE(Heartbeat(0, 0).ok());
  std::optional<net::Message> keep;
  auto failed = WaitForPhase(Phase::kFailed, &keep);
  ASSERT_TRUE(keep.has_value());
  const std::string reason = failed.getReason().cStr();
  EXPECT_NE(reason.find("partitions 0 (at example 50), 1 (at example 0) are unfinished"),
            std::string::npos)
      << reason;
  EXPECT_NE(reason.find("dead workers: 0"), std::string::npos) << reason;
  absl::Status status = scheduler_->WaitUntilDone();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(status.message(), reason);
}

// events.jsonl of a whole job: its start, the phases, both registrations, the final
// checkpoint (with its size) and the end, each with the keys docs/metrics.md lists.
TEST_F(SchedulerServiceTest, EventsOfAWholeJob) {
  RegisterBoth();
  ASSERT_TRUE(Partition(0, -1, 0, false).ok());
  ASSERT_TRUE(Partition(0, 0, 100, true).ok());
  ASSERT_TRUE(Partition(0, 1, 100, true).ok());
  ASSERT_TRUE(Leave(0, 6).ok());
  ASSERT_TRUE(scheduler_->WaitUntilDone().ok());
  EXPECT_EQ(metrics_.GetGauge("towerps_scheduler_planned_steps")->value(), 6);

  std::vector<std::string> names;
  for (const nlohmann::json& e : ReadEvents(events_)) names.push_back(e["event"]);
  EXPECT_EQ(names,
            (std::vector<std::string>{"job_start", "phase", "node_registered", "node_registered",
                                      "phase", "checkpoint", "phase", "job_end"}));
  auto start = ReadEvents(events_, "job_start");
  ASSERT_EQ(start.size(), 1u);
  EXPECT_EQ(start[0]["job_id"], absl::StrFormat("%016x", scheduler_->job_id()));
  EXPECT_EQ(start[0]["config"], "examples/generated.conf");
  EXPECT_EQ(start[0]["dataset"], "data/generated");
  EXPECT_EQ(start[0]["servers"], 1);
  EXPECT_EQ(start[0]["workers"], 1);
  EXPECT_EQ(start[0]["planned_steps"], 6);
  EXPECT_EQ(start[0]["staleness"], 0);
  EXPECT_EQ(start[0]["partitions"], 2);
  EXPECT_EQ(start[0]["recovered"], false);
  EXPECT_EQ(start[0]["start_step"], 0);

  std::vector<std::string> phases;
  for (const nlohmann::json& e : ReadEvents(events_, "phase")) {
    phases.push_back(e["phase"]);
    EXPECT_TRUE(e["reason"].is_string());
  }
  EXPECT_EQ(phases, (std::vector<std::string>{"registering", "training", "done"}));

  auto registered = ReadEvents(events_, "node_registered");
  ASSERT_EQ(registered.size(), 2u);
  EXPECT_EQ(registered[0]["role"], "ps");
  EXPECT_EQ(registered[0]["rank"], 0);
  EXPECT_EQ(registered[0]["endpoint"], ps_rpc_->endpoint());
  EXPECT_EQ(registered[0]["replaced"], false);
  EXPECT_EQ(registered[1]["role"], "worker");
  EXPECT_EQ(registered[1]["endpoint"], "");

  auto checkpoint = ReadEvents(events_, "checkpoint");
  ASSERT_EQ(checkpoint.size(), 1u);
  EXPECT_EQ(checkpoint[0]["step"], 6);
  EXPECT_EQ(checkpoint[0]["dir"], ps::CheckpointDir(root_, 6));
  EXPECT_EQ(checkpoint[0]["ok"], true);
  EXPECT_EQ(checkpoint[0]["error"], "");
  EXPECT_EQ(checkpoint[0]["incremental"], false);
  EXPECT_TRUE(checkpoint[0]["duration_ms"].is_number());
  auto manifest = ps::ReadManifest(ps::CheckpointDir(root_, 6));
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  int64_t bytes = 0;
  for (const ps::CheckpointFile& f : manifest->files) bytes += static_cast<int64_t>(f.bytes);
  EXPECT_GT(bytes, 0);
  EXPECT_EQ(checkpoint[0]["bytes"], bytes);

  auto end = ReadEvents(events_, "job_end");
  ASSERT_EQ(end.size(), 1u);
  EXPECT_EQ(end[0]["phase"], "done");
  EXPECT_EQ(end[0]["global_step"], 6);
  EXPECT_TRUE(end[0]["reason"].is_string());
  EXPECT_TRUE(end[0]["duration_ms"].is_number());
}

// A worker process restarted for its rank: the holder's death ("replaced") and the
// replacement's registration; then the new holder goes silent: a heartbeat timeout.
TEST_F(SchedulerServiceTest, ReplacedAndDeadNodesAreEvents) {
  RegisterBoth();
  ASSERT_TRUE(Call([&](Envelope::Body::Builder b) {
                auto r = b.initRegister();
                r.setRole(1);
                r.setRank(0);
              }).ok());
  auto dead = ReadEvents(events_, "node_dead");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0]["role"], "worker");
  EXPECT_EQ(dead[0]["rank"], 0);
  EXPECT_EQ(dead[0]["reason"], "replaced by a new process");
  auto registered = ReadEvents(events_, "node_registered");
  ASSERT_EQ(registered.size(), 3u);
  EXPECT_EQ(registered[2]["role"], "worker");
  EXPECT_EQ(registered[2]["rank"], 0);
  EXPECT_EQ(registered[2]["replaced"], true);

  clock_.AdvanceMicros(11'000'000);   // past heartbeat_timeout_ms (10 s)
  ASSERT_TRUE(Heartbeat(0, 0).ok());  // the server stays alive
  for (int i = 0; i < 500 && ReadEvents(events_, "node_dead").size() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  dead = ReadEvents(events_, "node_dead");
  ASSERT_EQ(dead.size(), 2u) << "worker 0 was not declared dead";
  EXPECT_EQ(dead[1]["role"], "worker");
  EXPECT_EQ(dead[1]["rank"], 0);
  EXPECT_EQ(dead[1]["reason"], "heartbeat timeout");
}

class SchedulerRetentionTest : public SchedulerServiceTest {
 protected:
  void Customize(SchedulerOptions* options) override {
    options->full_checkpoint_every = 2;
    options->keep_full_checkpoints = 1;
  }

  // `ctl checkpoint` at `step`: the worker reports `step` finished steps and waits at
  // the barrier until the checkpoint is written (5 s at most).
  void CheckpointAt(int64_t step) {
    ASSERT_TRUE(Control("checkpoint").ok());
    const std::string want = "\"last_checkpoint\":\"" + ps::CheckpointDir(root_, step) + "\"";
    for (int i = 0; i < 500 && scheduler_->StatusJson().find(want) == std::string::npos; ++i) {
      ASSERT_TRUE(Call([&](Envelope::Body::Builder b) {
                    auto c = b.initClock();
                    c.setRank(0);
                    c.setFinishedSteps(step);
                    c.setNextStep(step);
                  }).ok());
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_NE(scheduler_->StatusJson().find(want), std::string::npos)
        << "no checkpoint at step " << step << ": " << scheduler_->StatusJson();
  }
};

// Checkpoints at 2 (full), 4 (on 2), 6 (full), then the final one at 8 (on 6): the full
// one at 6 deletes the chain of 2, leaving only the newest chain.
TEST_F(SchedulerRetentionTest, OnlyTheNewestChainIsKept) {
  RegisterBoth();
  ASSERT_EQ(Partition(0, -1, 0, false)->envelope().getBody().getPartitionReply().getPartition(), 0);
  for (int64_t step : {2, 4, 6}) {
    CheckpointAt(step);
    if (HasFatalFailure()) return;
  }
  ASSERT_TRUE(Partition(0, 0, 100, true).ok());
  ASSERT_TRUE(Partition(0, 1, 100, true).ok());
  ASSERT_TRUE(Leave(0, 8).ok());
  ASSERT_TRUE(scheduler_->WaitUntilDone().ok());
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(root_)) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{ps::CheckpointName(6), ps::CheckpointName(8)}));
  auto latest = ps::LatestCheckpoint(root_);
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(*latest, ps::CheckpointDir(root_, 8));
  auto chain = ps::ReadChain(*latest);
  ASSERT_TRUE(chain.ok()) << chain.status();
  ASSERT_EQ(chain->size(), 2u);
  EXPECT_EQ(chain->front().manifest.step, 6);
}

}  // namespace
}  // namespace towerps::scheduler
