// The scheduler's recovery over real sockets: a replaced parameter server (async:
// only its rank restored, lost steps counted; sync: the whole job rolled back), a
// replaced worker, and a restarted scheduler adopting its job (--recover).
#include "scheduler/recovery.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "gtest/gtest.h"
#include "net/membership_client.h"
#include "ps/checkpoint.h"
#include "ps/server.h"
#include "scheduler/job_file.h"
#include "scheduler/scheduler.h"
#include "scheduler/test_util.h"

namespace towerps::scheduler {
namespace {

using net::wire::Envelope;

// A parameter server of the test's job behind its own RPC endpoint.
struct TestServer {
  std::unique_ptr<ps::ParameterServer> ps;
  std::unique_ptr<net::RpcServer> rpc;
  int64_t rows() { return ps->table(0)->size(); }
  // The dense block's version (-1 until assigned or restored).
  int64_t dense_version() {
    std::vector<float> values(ps->dense()->size());
    return ps->dense()->Read(values.data());
  }
  // Creates `n` rows with keys from `first`.
  void AddRows(uint64_t first, int n) {
    std::vector<uint64_t> keys;
    for (int i = 0; i < n; ++i) keys.push_back(first + i);
    std::vector<float> out(keys.size() * 4);
    ps->table(0)->Pull(keys, 0, out.data());
  }
};

class RecoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::path(::testing::TempDir()) /
            ("recovery_test_" + std::to_string(::getpid()));
    ASSERT_TRUE(RemoveAll(root_).ok());
    ASSERT_TRUE(CreateDirectories(root_).ok());
  }
  void TearDown() override {
    scheduler_.reset();
    (void)RemoveAll(root_);
  }

  SchedulerOptions Options(int servers, int workers, int partitions, int64_t staleness) {
    SchedulerOptions options;
    options.job.num_servers = servers;
    options.job.num_workers = workers;
    options.job.num_partitions = partitions;
    options.job.staleness = staleness;
    options.job.heartbeat_timeout_ms = 1000;
    options.num_virtual_shards = 16;
    options.lr_scale.base_lr = 1.0;
    options.checkpoint_root = root_ + "/checkpoint";
    options.dense_params = 3;
    options.monitor_interval_ms = 10;
    options.job_file = root_ + "/scheduler.job";
    options.events_path = events_path();
    return options;
  }

  void StartScheduler(const SchedulerOptions& options) {
    auto scheduler = Scheduler::Start(&ctx_, options, &metrics_, &clock_);
    ASSERT_TRUE(scheduler.ok()) << scheduler.status();
    scheduler_ = std::move(scheduler).value();
    num_servers_ = options.job.num_servers;
    net::RpcClientOptions client;
    client.endpoint = scheduler_->endpoint();
    auto c = net::RpcClient::Connect(&ctx_, client);
    ASSERT_TRUE(c.ok());
    client_ = std::move(c).value();
  }

  // A fresh server process for `rank` of the running job (no request reached it);
  // `assign` sets its dense block as worker 0 would.
  std::unique_ptr<TestServer> MakeServer(int rank, bool assign = true) {
    auto server = std::make_unique<TestServer>();
    ps::ParameterServerOptions options;
    sparse_emb::TableConfig table;
    table.dim = 4;
    options.tables = {table};
    options.dense_params = 3;
    options.rank = rank;
    options.num_servers = num_servers_;
    options.job_id = scheduler_->job_id();
    options.checkpoint_root = root_ + "/checkpoint";
    server->ps = ps::ParameterServer::Create(options, nullptr).value();
    std::vector<float> dense(server->ps->dense()->size(), 0.5f);
    if (assign) {
      EXPECT_TRUE(server->ps->dense()->Assign(dense).ok());
    }
    ps::ParameterServer* raw = server->ps.get();
    server->rpc =
        net::RpcServer::Start(
            &ctx_, net::RpcServerOptions(),
            [raw](const net::Peer&, const Envelope::Reader& r) { return raw->Handle(r); }, nullptr)
            .value();
    return server;
  }

  absl::StatusOr<net::Message> Call(const std::function<void(Envelope::Body::Builder)>& fill) {
    return CallScheduler(client_.get(), fill);
  }

  absl::StatusOr<net::Message> Register(uint8_t role, int rank, const std::string& endpoint,
                                        uint64_t job_id = 0, int64_t finished = 0,
                                        int64_t global_step = -1,
                                        std::vector<ps::PartitionProgress> partitions = {}) {
    return Call([&](Envelope::Body::Builder b) {
      auto r = b.initRegister();
      r.setRole(role);
      r.setRank(rank);
      r.setEndpoint(endpoint.c_str());
      r.setJobId(job_id);
      r.setFinishedSteps(finished);
      r.setGlobalStep(global_step);
      auto list = r.initPartitions(static_cast<unsigned>(partitions.size()));
      for (size_t i = 0; i < partitions.size(); ++i) {
        list[i].setId(partitions[i].id);
        list[i].setOffset(partitions[i].offset);
        list[i].setDone(partitions[i].done);
      }
    });
  }
  absl::StatusOr<net::Message> Heartbeat(uint8_t role, int rank) {
    return Call([&](Envelope::Body::Builder b) {
      auto h = b.initHeartbeat();
      h.setRole(role);
      h.setRank(rank);
    });
  }
  absl::StatusOr<net::Message> Clock(int rank, int64_t finished, int partition = -1,
                                     int64_t offset = 0) {
    return Call([&](Envelope::Body::Builder b) {
      auto c = b.initClock();
      c.setRank(rank);
      c.setFinishedSteps(finished);
      c.setNextStep(finished);
      c.setPartition(partition);
      c.setOffset(offset);
    });
  }
  absl::StatusOr<net::Message> Query(int rank) {
    return Call([&](Envelope::Body::Builder b) {
      auto q = b.initClusterQuery();
      q.setRole(net::kRoleWorker);
      q.setRank(rank);
    });
  }
  // The partition granted to worker `rank` (-1 for none) and its offset.
  std::pair<int, int64_t> Grant(int rank, int partition = -1, int64_t offset = 0,
                                bool done = false) {
    auto reply = Call([&](Envelope::Body::Builder b) {
      auto p = b.initPartition();
      p.setRank(rank);
      p.setPartition(partition);
      p.setOffset(offset);
      p.setDone(done);
    });
    EXPECT_TRUE(reply.ok()) << reply.status();
    if (!reply.ok()) return {-2, 0};
    auto r = reply->envelope().getBody().getPartitionReply();
    return {r.getPartition(), r.getOffset()};
  }

  // Polls until `done` (5 s at most).
  bool WaitFor(const std::function<bool()>& done) {
    for (int i = 0; i < 500; ++i) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  bool PhaseIs(Phase phase) {
    return scheduler_->StatusJson().find(absl::StrCat("\"phase\":\"", PhaseName(phase), "\"")) !=
           std::string::npos;
  }
  // Orders a checkpoint and waits until the newest complete one has `step`.
  void Checkpoint(int64_t step) {
    ASSERT_TRUE(
        Call([](Envelope::Body::Builder b) { b.initControl().setCommand("checkpoint"); }).ok());
    ASSERT_TRUE(WaitFor([&] {
      auto latest = ps::LatestCheckpoint(root_ + "/checkpoint");
      return latest.ok() && *latest == ps::CheckpointDir(root_ + "/checkpoint", step);
    })) << "no checkpoint at step "
        << step;
  }
  int64_t CounterValue(const char* name) { return metrics_.GetCounter(name)->value(); }
  std::string events_path() const { return root_ + "/events.jsonl"; }
  // The "phase" values of the phase events, in order.
  std::vector<std::string> Phases() {
    std::vector<std::string> phases;
    for (const nlohmann::json& e : ReadEvents(events_path(), "phase")) phases.push_back(e["phase"]);
    return phases;
  }

  // A job of one server and one worker, 10 steps in, checkpointed at step 10 with
  // partition 0 at offset 100 and 2 rows on the server (returned).
  std::unique_ptr<TestServer> StartCheckpointedJob(const SchedulerOptions& options) {
    StartScheduler(options);
    auto server = MakeServer(0);
    EXPECT_TRUE(Register(net::kRoleServer, 0, server->rpc->endpoint()).ok());
    EXPECT_TRUE(Register(net::kRoleWorker, 0, "").ok());
    EXPECT_EQ(Grant(0).first, 0);
    server->AddRows(0, 2);
    EXPECT_TRUE(Clock(0, 10, 0, 100).ok());
    Checkpoint(10);
    return server;
  }

  net::ZmqContext ctx_;
  MetricsRegistry metrics_;
  FakeClock clock_;
  std::string root_;
  int num_servers_ = 0;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<net::RpcClient> client_;
};

// Async: ps/1 misses its heartbeats; its replacement registers and is ordered to
// restore its files of the newest checkpoint; ps/0 keeps its newer state.
TEST_F(RecoveryTest, ReplacedServerOfAnAsyncJobRestoresOnlyItsRank) {
  StartScheduler(Options(2, 1, 1, -1));
  auto s0 = MakeServer(0);
  auto s1 = MakeServer(1);
  ASSERT_TRUE(Register(net::kRoleServer, 0, s0->rpc->endpoint()).ok());
  ASSERT_TRUE(Register(net::kRoleServer, 1, s1->rpc->endpoint()).ok());
  ASSERT_TRUE(Register(net::kRoleWorker, 0, "").ok());
  ASSERT_EQ(Grant(0).first, 0);
  s0->AddRows(0, 2);
  s1->AddRows(0, 2);
  ASSERT_TRUE(Clock(0, 10, 0, 100).ok());
  Checkpoint(10);
  s0->AddRows(100, 3);
  s1->AddRows(100, 3);
  ASSERT_TRUE(Clock(0, 25, 0, 250).ok());

  // ps/1 goes silent: everybody else heartbeats within the timeout.
  clock_.AdvanceMicros(600'000);
  ASSERT_TRUE(Heartbeat(net::kRoleServer, 0).ok());
  ASSERT_TRUE(Clock(0, 25, 0, 250).ok());
  clock_.AdvanceMicros(600'000);
  ASSERT_TRUE(Heartbeat(net::kRoleServer, 0).ok());
  ASSERT_TRUE(Clock(0, 25, 0, 250).ok());
  ASSERT_TRUE(WaitFor([&] { return PhaseIs(Phase::kRecovering); }));
  auto waiting = Clock(0, 25, 0, 250);
  ASSERT_TRUE(waiting.ok());
  EXPECT_FALSE(waiting->envelope().getBody().getClockReply().getMayStart());
  EXPECT_EQ(Heartbeat(net::kRoleServer, 1).status().code(), absl::StatusCode::kFailedPrecondition);

  s1.reset();
  auto replacement = MakeServer(1, /*assign=*/false);
  ASSERT_EQ(replacement->dense_version(), -1);
  auto reg = Register(net::kRoleServer, 1, replacement->rpc->endpoint());
  ASSERT_TRUE(reg.ok()) << reg.status();
  EXPECT_EQ(reg->envelope().getBody().getRegisterReply().getRestoreStep(), -1)
      << "a replacement is restored by order, not at its start";
  ASSERT_TRUE(WaitFor([&] { return PhaseIs(Phase::kTraining); }));
  EXPECT_EQ(replacement->rows(), 2) << "ps/1 restored from step 10";
  EXPECT_GE(replacement->dense_version(), 0) << "a restored dense block counts as set";
  EXPECT_EQ(s0->rows(), 5) << "ps/0 was not restored";
  EXPECT_EQ(CounterValue("towerps_scheduler_recoveries_total"), 1);
  EXPECT_EQ(CounterValue("towerps_scheduler_recovery_lost_steps_total"), 15);
  // Events: the checkpoint, ps/1's death, the recovery of rank 1 and the phases.
  auto checkpoint = ReadEvents(events_path(), "checkpoint");
  ASSERT_EQ(checkpoint.size(), 1u);
  EXPECT_EQ(checkpoint[0]["step"], 10);
  EXPECT_GT(checkpoint[0]["bytes"].get<int64_t>(), 0);
  EXPECT_EQ(checkpoint[0]["ok"], true);
  auto dead = ReadEvents(events_path(), "node_dead");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0]["role"], "ps");
  EXPECT_EQ(dead[0]["rank"], 1);
  EXPECT_EQ(dead[0]["reason"], "heartbeat timeout");
  auto recovery = ReadEvents(events_path(), "recovery");
  ASSERT_EQ(recovery.size(), 1u);
  EXPECT_EQ(recovery[0]["rank"], 1);
  EXPECT_EQ(recovery[0]["lost_steps"], 15);
  EXPECT_EQ(recovery[0]["ok"], true);
  EXPECT_TRUE(recovery[0]["seconds"].is_number());
  EXPECT_EQ(Phases(),
            (std::vector<std::string>{"registering", "training", "recovering", "training"}));
  auto recovering = ReadEvents(events_path(), "phase")[2];
  EXPECT_EQ(recovering["reason"], "replacing ps/1");
  auto beat = Clock(0, 25, 0, 250);
  ASSERT_TRUE(beat.ok());
  EXPECT_EQ(beat->envelope().getBody().getClockReply().getEpoch(), 2u);
  EXPECT_TRUE(beat->envelope().getBody().getClockReply().getMayStart());
  auto view = Query(0);
  ASSERT_TRUE(view.ok());
  auto cluster = view->envelope().getBody().getRegisterReply();
  EXPECT_EQ(std::string(cluster.getServerEndpoints()[1].cStr()), replacement->rpc->endpoint());
  EXPECT_EQ(cluster.getRollbackEpoch(), 0u);
  EXPECT_EQ(cluster.getFinishedSteps(), 25);
}

// Sync: a new process registers for the live ps/0; every server restores the
// checkpoint and the job's progress rolls back to it.
TEST_F(RecoveryTest, ReplacedServerOfASyncJobRollsTheJobBack) {
  StartScheduler(Options(2, 2, 2, 0));
  auto s0 = MakeServer(0);
  auto s1 = MakeServer(1);
  ASSERT_TRUE(Register(net::kRoleServer, 0, s0->rpc->endpoint()).ok());
  ASSERT_TRUE(Register(net::kRoleServer, 1, s1->rpc->endpoint()).ok());
  ASSERT_TRUE(Register(net::kRoleWorker, 0, "").ok());
  ASSERT_TRUE(Register(net::kRoleWorker, 1, "").ok());
  ASSERT_EQ(Grant(0).first, 0);
  ASSERT_EQ(Grant(1).first, 1);
  s0->AddRows(0, 2);
  s1->AddRows(0, 2);
  ASSERT_TRUE(Clock(0, 4, 0, 40).ok());
  ASSERT_TRUE(Clock(1, 3, 1, 30).ok());
  // The checkpoint waits at its barrier until both workers finished 4 steps.
  ASSERT_TRUE(
      Call([](Envelope::Body::Builder b) { b.initControl().setCommand("checkpoint"); }).ok());
  auto held = Clock(0, 4, 0, 40);
  ASSERT_TRUE(WaitFor([&] {
    held = Clock(0, 4, 0, 40);
    return held.ok() && !held->envelope().getBody().getClockReply().getMayStart();
  })) << "the worker ahead is held at the barrier";
  EXPECT_FALSE(ps::LatestCheckpoint(root_ + "/checkpoint").ok());
  ASSERT_TRUE(Clock(1, 4, 1, 44).ok());
  // Both wait for step 4 (they poll, as workers do): the checkpoint is taken.
  ASSERT_TRUE(WaitFor([&] {
    EXPECT_TRUE(Clock(0, 4, 0, 40).ok());
    EXPECT_TRUE(Clock(1, 4, 1, 44).ok());
    return ps::LatestCheckpoint(root_ + "/checkpoint").ok();
  }));
  EXPECT_EQ(*ps::LatestCheckpoint(root_ + "/checkpoint"),
            ps::CheckpointDir(root_ + "/checkpoint", 8));
  s0->AddRows(100, 3);
  s1->AddRows(100, 3);
  ASSERT_TRUE(Clock(0, 6, 0, 60).ok());
  ASSERT_TRUE(Clock(1, 6, 1, 66).ok());

  auto replacement = MakeServer(0);
  auto reg = Register(net::kRoleServer, 0, replacement->rpc->endpoint());
  ASSERT_TRUE(reg.ok()) << reg.status();
  EXPECT_EQ(reg->envelope().getBody().getRegisterReply().getPhase(),
            static_cast<uint8_t>(Phase::kRecovering));
  ASSERT_TRUE(WaitFor([&] { return PhaseIs(Phase::kTraining); }));
  EXPECT_EQ(replacement->rows(), 2);
  EXPECT_EQ(s1->rows(), 2) << "every server of a sync job restores";
  EXPECT_EQ(CounterValue("towerps_scheduler_recoveries_total"), 1);
  EXPECT_EQ(CounterValue("towerps_scheduler_recovery_lost_steps_total"), 4);
  // Events: ps/0's holder replaced, then a whole-job rollback (rank -1).
  auto dead = ReadEvents(events_path(), "node_dead");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0]["reason"], "replaced by a new process");
  auto registered = ReadEvents(events_path(), "node_registered");
  ASSERT_EQ(registered.size(), 5u);
  EXPECT_EQ(registered[4]["role"], "ps");
  EXPECT_EQ(registered[4]["endpoint"], replacement->rpc->endpoint());
  EXPECT_EQ(registered[4]["replaced"], true);
  auto recovery = ReadEvents(events_path(), "recovery");
  ASSERT_EQ(recovery.size(), 1u);
  EXPECT_EQ(recovery[0]["rank"], -1);
  EXPECT_EQ(recovery[0]["lost_steps"], 4);
  EXPECT_EQ(recovery[0]["ok"], true);

  // A worker that has not read the new view is stale: its old clock is ignored.
  auto stale = Clock(0, 7, 0, 70);
  ASSERT_TRUE(stale.ok());
  EXPECT_FALSE(stale->envelope().getBody().getClockReply().getMayStart());
  EXPECT_EQ(stale->envelope().getBody().getClockReply().getGlobalStep(), 8);
  EXPECT_EQ(stale->envelope().getBody().getClockReply().getEpoch(), 2u);
  for (int w = 0; w < 2; ++w) {
    auto view = Query(w);
    ASSERT_TRUE(view.ok());
    auto cluster = view->envelope().getBody().getRegisterReply();
    EXPECT_EQ(cluster.getEpoch(), 2u);
    EXPECT_EQ(cluster.getRollbackEpoch(), 2u);
    EXPECT_EQ(cluster.getRestoreStep(), 8);
    EXPECT_EQ(cluster.getFinishedSteps(), 0);
  }
  auto grant = Grant(0);
  EXPECT_EQ(grant.first, 0);
  EXPECT_EQ(grant.second, 40) << "partitions restart at the checkpoint's offsets";
  auto again = Clock(0, 0, 0, 40);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->envelope().getBody().getClockReply().getMayStart());
  EXPECT_EQ(again->envelope().getBody().getClockReply().getGlobalStep(), 8);
}

TEST_F(RecoveryTest, ReplacedWorkerContinuesItsRanksClock) {
  StartScheduler(Options(1, 2, 2, 2));
  auto s0 = MakeServer(0);
  ASSERT_TRUE(Register(net::kRoleServer, 0, s0->rpc->endpoint()).ok());
  ASSERT_TRUE(Register(net::kRoleWorker, 0, "").ok());
  ASSERT_TRUE(Register(net::kRoleWorker, 1, "").ok());
  ASSERT_EQ(Grant(0).first, 0);
  ASSERT_EQ(Grant(1).first, 1);
  ASSERT_TRUE(Clock(0, 12, 0, 120).ok());
  ASSERT_TRUE(Clock(1, 11, 1, 110).ok());
  Gauge* spread = metrics_.GetGauge("towerps_scheduler_clock_spread_steps");
  EXPECT_TRUE(WaitFor([&] { return spread->value() == 1; })) << spread->value();
  auto reg = Register(net::kRoleWorker, 0, "");
  ASSERT_TRUE(reg.ok()) << reg.status();
  EXPECT_EQ(reg->envelope().getBody().getRegisterReply().getRank(), 0);
  EXPECT_EQ(reg->envelope().getBody().getRegisterReply().getFinishedSteps(), 12);
  EXPECT_EQ(Grant(0), std::make_pair(0, int64_t{120}));
  auto clock = Clock(0, 13, 0, 130);
  ASSERT_TRUE(clock.ok());
  EXPECT_TRUE(clock->envelope().getBody().getClockReply().getMayStart());
  EXPECT_EQ(clock->envelope().getBody().getClockReply().getGlobalStep(), 24);
  EXPECT_TRUE(PhaseIs(Phase::kTraining)) << "a worker replacement is no recovery";
  EXPECT_TRUE(WaitFor([&] { return spread->value() == 2; })) << spread->value();
  EXPECT_TRUE(ReadEvents(events_path(), "recovery").empty());
  EXPECT_EQ(ReadEvents(events_path(), "node_registered").back()["replaced"], true);
}

// The scheduler process dies (its job file still says running); the restarted one
// (--recover) binds the same endpoint, adopts the job and merges the survivors.
TEST_F(RecoveryTest, RestartedSchedulerAdoptsItsJob) {
  SchedulerOptions options = Options(1, 1, 2, -1);
  auto s0 = StartCheckpointedJob(options);
  const std::string endpoint = scheduler_->endpoint();
  const uint64_t job_id = scheduler_->job_id();
  s0->AddRows(100, 3);
  ASSERT_TRUE(Clock(0, 15, 0, 150).ok());
  auto file = ReadJobFile(options.job_file);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->state, "running");
  EXPECT_EQ(file->endpoint, endpoint);
  EXPECT_EQ(file->job_id, job_id);

  scheduler_->Stop();  // like kill -9: the job file is left as it was
  scheduler_.reset();
  options.recover = true;
  StartScheduler(options);
  EXPECT_EQ(scheduler_->endpoint(), endpoint);
  EXPECT_EQ(scheduler_->job_id(), job_id);
  // The nodes are unknown: their heartbeats get NotFound, and they register again.
  EXPECT_EQ(Heartbeat(net::kRoleServer, 0).status().code(), absl::StatusCode::kNotFound);
  auto reg = Register(net::kRoleServer, 0, s0->rpc->endpoint(), job_id);
  ASSERT_TRUE(reg.ok()) << reg.status();
  EXPECT_EQ(reg->envelope().getBody().getRegisterReply().getRestoreStep(), -1)
      << "a surviving server keeps its state";
  reg = Register(net::kRoleWorker, 0, "", job_id, 15, 15, {{0, 150, false}});
  ASSERT_TRUE(reg.ok()) << reg.status();
  EXPECT_EQ(reg->envelope().getBody().getRegisterReply().getPhase(),
            static_cast<uint8_t>(Phase::kTraining));
  EXPECT_EQ(reg->envelope().getBody().getRegisterReply().getEpoch(), 2u);
  EXPECT_EQ(s0->rows(), 5);
  auto clock = Clock(0, 15, 0, 150);
  ASSERT_TRUE(clock.ok());
  EXPECT_EQ(clock->envelope().getBody().getClockReply().getGlobalStep(), 15);
  EXPECT_EQ(Grant(0), std::make_pair(0, int64_t{150}));
  EXPECT_EQ(Grant(0, 0, 200, true), std::make_pair(1, int64_t{0}));
  // A process of another job is refused.
  EXPECT_EQ(Register(net::kRoleServer, 0, "tcp://127.0.0.1:1", job_id + 1).status().code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(WaitFor([&] {
    auto f = ReadJobFile(options.job_file);
    return f.ok() && f->epoch == 2;
  }));
  // The job finishes: the file says done, and a later --recover starts a new job.
  EXPECT_EQ(Grant(0, 1, 50, true).first, -1);
  ASSERT_TRUE(Call([](Envelope::Body::Builder b) {
                auto c = b.initClock();
                c.setRank(0);
                c.setFinishedSteps(20);
                c.setNextStep(20);
                c.setFinished(true);
              }).ok());
  ASSERT_TRUE(scheduler_->WaitUntilDone().ok());
  EXPECT_EQ(ReadJobFile(options.job_file)->state, "done");
  // Both schedulers appended to the same events.jsonl; the second adopted the job at
  // its checkpoint's step.
  auto starts = ReadEvents(events_path(), "job_start");
  ASSERT_EQ(starts.size(), 2u);
  EXPECT_EQ(starts[0]["recovered"], false);
  EXPECT_EQ(starts[1]["recovered"], true);
  EXPECT_EQ(starts[1]["start_step"], 10);
  EXPECT_EQ(starts[1]["job_id"], starts[0]["job_id"]);
  auto ends = ReadEvents(events_path(), "job_end");
  ASSERT_EQ(ends.size(), 1u) << "the first scheduler was killed";
  EXPECT_EQ(ends[0]["phase"], "done");
  EXPECT_EQ(ends[0]["global_step"], 20);
  scheduler_.reset();
  StartScheduler(options);
  EXPECT_NE(scheduler_->job_id(), job_id);
}

// A resumed job (not an adopted one): every server, the last to register too, is
// told to load the checkpoint at its start.
TEST_F(RecoveryTest, ResumedJobTellsEveryServerItsCheckpoint) {
  SchedulerOptions options = Options(2, 1, 1, -1);
  StartScheduler(options);
  scheduler_.reset();
  {
    ps::CheckpointManifest manifest;
    manifest.job_id = 0x5eed;
    manifest.step = 30;
    manifest.num_servers = 2;
    manifest.num_virtual_shards = 16;
    manifest.dense_params = 3;
    manifest.partitions = {{0, 64, false}};
    const std::string dir = ps::CheckpointDir(options.checkpoint_root, 30);
    ASSERT_TRUE(CreateDirectories(dir).ok());
    ASSERT_TRUE(ps::WriteManifest(dir, manifest).ok());
    options.resume_from = dir;
  }
  StartScheduler(options);
  ASSERT_TRUE(Register(net::kRoleWorker, 0, "").ok());
  for (int s = 0; s < 2; ++s) {
    auto reg = Register(net::kRoleServer, s, "tcp://127.0.0.1:" + std::to_string(1000 + s));
    ASSERT_TRUE(reg.ok()) << reg.status();
    EXPECT_EQ(reg->envelope().getBody().getRegisterReply().getRestoreStep(), 30) << "ps/" << s;
  }
  EXPECT_TRUE(PhaseIs(Phase::kTraining));
}

// A restarted scheduler whose server was restarted too: the new server (job id 0)
// is ordered to restore the baseline checkpoint once every node is back, and the
// steps its shards lost are counted.
TEST_F(RecoveryTest, RestartedSchedulerRestoresANewServer) {
  SchedulerOptions options = Options(1, 1, 1, -1);
  auto s0 = StartCheckpointedJob(options);
  const uint64_t job_id = scheduler_->job_id();
  ASSERT_TRUE(Clock(0, 16, 0, 160).ok());
  scheduler_->Stop();
  scheduler_.reset();
  s0.reset();
  options.recover = true;
  StartScheduler(options);
  auto replacement = MakeServer(0, /*assign=*/false);
  auto reg = Register(net::kRoleServer, 0, replacement->rpc->endpoint());
  ASSERT_TRUE(reg.ok()) << reg.status();
  EXPECT_EQ(reg->envelope().getBody().getRegisterReply().getRestoreStep(), -1)
      << "restored by order once every node is back";
  reg = Register(net::kRoleWorker, 0, "", job_id, 16, 16, {{0, 160, false}});
  ASSERT_TRUE(reg.ok()) << reg.status();
  EXPECT_EQ(reg->envelope().getBody().getRegisterReply().getPhase(),
            static_cast<uint8_t>(Phase::kRecovering));
  ASSERT_TRUE(WaitFor([&] { return PhaseIs(Phase::kTraining); }));
  EXPECT_EQ(replacement->rows(), 2);
  EXPECT_GE(replacement->dense_version(), 0);
  EXPECT_EQ(CounterValue("towerps_scheduler_recovery_lost_steps_total"), 6);
  auto clock = Clock(0, 16, 0, 160);
  ASSERT_TRUE(clock.ok());
  EXPECT_TRUE(clock->envelope().getBody().getClockReply().getMayStart());
  EXPECT_EQ(clock->envelope().getBody().getClockReply().getGlobalStep(), 16);
  EXPECT_EQ(clock->envelope().getBody().getClockReply().getEpoch(), 3u);  // adopted, restored
}

}  // namespace
}  // namespace towerps::scheduler
