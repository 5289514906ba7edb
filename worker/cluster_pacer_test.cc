#include "worker/cluster_pacer.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>
#include <thread>

#include "gtest/gtest.h"
#include "net/membership_client.h"
#include "net/scheduler_watch.h"
#include "net/transport.h"
#include "worker/fake_cluster_scheduler.h"
#include "worker/loop_test_util.h"

namespace towerps::worker {
namespace {

using std::chrono::steady_clock;

// Polls `done` every 5 ms for up to 10 s.
template <typename Pred>
bool Eventually(Pred done) {
  const auto deadline = steady_clock::now() + std::chrono::seconds(10);
  while (steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return done();
}

// A worker's pacing against the fake scheduler, its parameter server served over
// RPC from the fixture's in-process one.
class ClusterPacerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto served = net::RpcServer::Start(
        &ctx_, net::RpcServerOptions(),
        [this](const net::Peer&, const net::wire::Envelope::Reader& r) {
          return fixture_.server->Handle(r);
        },
        nullptr);
    ASSERT_TRUE(served.ok()) << served.status();
    ps_ = std::move(served).value();
    scheduler_.set_server_endpoint(ps_->endpoint());
  }
  void TearDown() override {
    pacer_.reset();
    if (watch_) watch_->Stop();
  }

  void Start(int64_t staleness = 0) {
    scheduler_.set_staleness(staleness);
    net::RpcClientOptions rpc;
    rpc.endpoint = scheduler_.endpoint();
    rpc.name = "worker/0";
    rpc.timeout_ms = 500;
    net::SchedulerWatchOptions w;
    w.rpc = rpc;
    w.rank = 0;
    w.heartbeat_interval_ms = 50;
    w.scheduler_timeout_ms = 5000;
    watch_ = std::move(net::SchedulerWatch::Start(&ctx_, w)).value();
    rpc.cancel = watch_->cancellation();
    auto client = net::MembershipClient::Connect(&ctx_, rpc);
    ASSERT_TRUE(client.ok()) << client.status();
    ClusterPacerOptions options;
    options.rank = 0;
    options.name = "worker/0";
    options.client.rpc.timeout_ms = 2000;
    options.client.rpc.cancel = watch_->cancellation();
    options.client.client_id = 1;
    options.client.dense_params = fixture_.server->options().dense_params;
    options.partition_poll_ms = 10;
    options.init_timeout_ms = 5000;
    auto pacer = ClusterPacer::Create(&ctx_, options, scheduler_.View(), /*finished=*/0,
                                      std::move(client).value(), watch_.get(), &stop_, &rejoin_);
    ASSERT_TRUE(pacer.ok()) << pacer.status();
    pacer_ = std::move(pacer).value();
    runner_ = *StepRunner::Create(&fixture_.model, fixture_.catalog.get(), pacer_->params(), 1);
    ASSERT_TRUE(pacer_->InitDense(runner_.get()).ok());
  }

  net::ZmqContext ctx_;
  Fixture fixture_;
  std::unique_ptr<net::RpcServer> ps_;
  FakeClusterScheduler scheduler_{&ctx_};
  std::unique_ptr<net::SchedulerWatch> watch_;
  absl::Notification stop_;
  RejoinState rejoin_;
  std::unique_ptr<ClusterPacer> pacer_;
  std::unique_ptr<StepRunner> runner_;
};

TEST_F(ClusterPacerTest, ARecoveringJobHoldsTheStepAndNeverEndsTheWorker) {
  Start();
  scheduler_.set_phase(net::kPhaseRecovering);
  std::atomic<bool> returned{false};
  absl::StatusOr<StepGrant> grant;
  std::thread asker([&] {
    grant = pacer_->MayStart(LoopProgress());
    returned = true;
  });
  const int clocks = scheduler_.seen().clocks;
  ASSERT_TRUE(Eventually([&] { return scheduler_.seen().clocks >= clocks + 3; }));
  EXPECT_FALSE(returned.load());  // still waiting, polling at the recovery pace
  scheduler_.set_phase(net::kPhaseTraining);
  asker.join();
  ASSERT_TRUE(grant.ok()) << grant.status();
  EXPECT_EQ(grant->kind, StepGrant::Kind::kRun);
}

TEST_F(ClusterPacerTest, EveryClockCarriesTheProgressAndTheRejoinStateFollowsIt) {
  Start();
  scheduler_.AddGrant({/*partition=*/1, /*offset=*/40, /*wait=*/false});
  auto start = pacer_->NextPartition(LoopProgress(), false);
  ASSERT_TRUE(start.ok()) << start.status();
  EXPECT_EQ(start->partition, 1);
  EXPECT_EQ(start->offset, 40);
  LoopProgress p;
  p.partition = 1;
  p.offset = 72;
  p.finished = 5;
  auto grant = pacer_->MayStart(p);
  ASSERT_TRUE(grant.ok()) << grant.status();
  EXPECT_EQ(grant->kind, StepGrant::Kind::kRun);
  FakeClusterScheduler::Seen seen = scheduler_.seen();
  EXPECT_EQ(seen.clock_partition, 1);
  EXPECT_EQ(seen.clock_offset, 72);
  EXPECT_EQ(seen.clock_finished, 5);
  EXPECT_TRUE(std::isnan(seen.clock_loss));  // no step finished yet
  EXPECT_EQ(seen.clock_examples, 0);
  p.offset = 104;
  p.finished = 6;
  StepStats stats;
  stats.loss = 2.0;
  stats.examples = 32;
  ASSERT_TRUE(pacer_->StepDone(p, stats).ok());
  net::Rejoin rejoin = rejoin_.Get();
  EXPECT_EQ(rejoin.job_id, 77u);
  EXPECT_EQ(rejoin.finished_steps, 6);
  EXPECT_EQ(rejoin.global_step, grant->step);
  ASSERT_EQ(rejoin.partitions.size(), 1u);
  EXPECT_EQ(rejoin.partitions[0].id, 1);
  EXPECT_EQ(rejoin.partitions[0].offset, 104);
  EXPECT_FALSE(rejoin.partitions[0].done);
  // Finished: reported done, remembered as finished for a restarted scheduler.
  start = pacer_->NextPartition(p, /*done=*/true);
  ASSERT_TRUE(start.ok()) << start.status();
  EXPECT_EQ(start->partition, -1);
  seen = scheduler_.seen();
  ASSERT_FALSE(seen.reports.empty());
  EXPECT_TRUE(seen.reports.back().done);
  EXPECT_EQ(seen.reports.back().offset, 104);
  rejoin = rejoin_.Get();
  ASSERT_EQ(rejoin.partitions.size(), 1u);
  EXPECT_TRUE(rejoin.partitions[0].done);
}

TEST_F(ClusterPacerTest, TheClockCarriesTheMeanLossSinceThePreviousOneAndTheExamples) {
  Start();
  LoopProgress p;
  p.partition = 0;
  ASSERT_EQ(pacer_->MayStart(p)->kind, StepGrant::Kind::kRun);
  StepStats stats;
  stats.examples = 10;
  for (double loss : {1.0, 2.0, std::nan(""), 6.0}) {  // a non-finite loss is left out
    stats.loss = loss;
    ++p.finished;
    ASSERT_TRUE(pacer_->StepDone(p, stats).ok());
  }
  ASSERT_EQ(pacer_->MayStart(p)->kind, StepGrant::Kind::kRun);
  FakeClusterScheduler::Seen seen = scheduler_.seen();
  EXPECT_FLOAT_EQ(seen.clock_loss, 3.0f);
  EXPECT_EQ(seen.clock_examples, 40);
  // No step since: no loss, the same total.
  ASSERT_EQ(pacer_->MayStart(p)->kind, StepGrant::Kind::kRun);
  seen = scheduler_.seen();
  EXPECT_TRUE(std::isnan(seen.clock_loss));
  EXPECT_EQ(seen.clock_examples, 40);
}

TEST_F(ClusterPacerTest, AnUnavailableSchedulerIsWaitedFor) {
  Start();
  scheduler_.FailNext(4, absl::UnavailableError("restarting"));
  auto grant = pacer_->MayStart(LoopProgress());
  ASSERT_TRUE(grant.ok()) << grant.status();
  EXPECT_EQ(grant->kind, StepGrant::Kind::kRun);
}

TEST_F(ClusterPacerTest, ANewEpochReconnectsAndARollbackRestarts) {
  Start();
  LoopProgress p;
  p.partition = 0;
  p.offset = 64;
  p.finished = 2;
  ASSERT_EQ(pacer_->MayStart(p)->kind, StepGrant::Kind::kRun);
  // A replaced server: reconnect, then carry on.
  scheduler_.NewEpoch(/*rollback=*/false, 0);
  ASSERT_EQ(pacer_->MayStart(p)->kind, StepGrant::Kind::kReconnect);
  const int queries = scheduler_.seen().queries;
  ASSERT_TRUE(pacer_->Reconnect(runner_.get()).ok());
  EXPECT_EQ(scheduler_.seen().queries, queries + 1);
  ASSERT_EQ(pacer_->MayStart(p)->kind, StepGrant::Kind::kRun);
  // A rollback: reconnect, then the loop restarts at the view's clock.
  scheduler_.NewEpoch(/*rollback=*/true, 0);
  ASSERT_EQ(pacer_->MayStart(p)->kind, StepGrant::Kind::kReconnect);
  ASSERT_TRUE(pacer_->Reconnect(runner_.get()).ok());
  auto restart = pacer_->MayStart(p);
  ASSERT_TRUE(restart.ok()) << restart.status();
  EXPECT_EQ(restart->kind, StepGrant::Kind::kRestart);
  EXPECT_EQ(restart->finished, 0);
  EXPECT_TRUE(rejoin_.Get().partitions.empty());
  EXPECT_EQ(rejoin_.Get().finished_steps, 0);
}

TEST_F(ClusterPacerTest, AnOutageIsWaitedOutUntilTheEpochChanges) {
  Start();
  std::atomic<bool> returned{false};
  absl::Status awaited;
  std::thread waiter([&] {
    awaited = pacer_->AwaitRecovery(absl::UnavailableError("ps/0 is gone"));
    returned = true;
  });
  const int clocks = scheduler_.seen().clocks;
  ASSERT_TRUE(Eventually([&] { return scheduler_.seen().clocks >= clocks + 2; }));
  EXPECT_FALSE(returned.load());
  scheduler_.NewEpoch(/*rollback=*/false, 0);
  waiter.join();
  EXPECT_TRUE(awaited.ok()) << awaited;
}

TEST_F(ClusterPacerTest, AWorkerWithoutAPartitionNoticesANewEpoch) {
  Start();
  for (int i = 0; i < 1000; ++i) scheduler_.AddGrant({-1, 0, /*wait=*/true});
  std::atomic<bool> returned{false};
  absl::StatusOr<PartitionStart> start;
  std::thread asker([&] {
    start = pacer_->NextPartition(LoopProgress(), false);
    returned = true;
  });
  const int clocks = scheduler_.seen().clocks;
  ASSERT_TRUE(Eventually([&] { return scheduler_.seen().clocks >= clocks + 2; }));
  EXPECT_FALSE(returned.load());
  scheduler_.NewEpoch(/*rollback=*/true, 0);
  asker.join();
  ASSERT_TRUE(start.ok()) << start.status();
  EXPECT_EQ(start->kind, StepGrant::Kind::kReconnect);
}

}  // namespace
}  // namespace towerps::worker
