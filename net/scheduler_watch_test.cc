#include "net/scheduler_watch.h"

#include <atomic>
#include <thread>

#include "gtest/gtest.h"
#include "net/fake_scheduler.h"

namespace towerps::net {
namespace {

SchedulerWatchOptions WatchOptions(const std::string& endpoint) {
  SchedulerWatchOptions options;
  options.rpc.endpoint = endpoint;
  options.rpc.name = "worker/1";
  options.role = kRoleWorker;
  options.rank = 1;
  options.heartbeat_interval_ms = 50;
  options.scheduler_timeout_ms = 400;
  return options;
}

TEST(SchedulerWatchTest, OptionsValidated) {
  SchedulerWatchOptions options = WatchOptions("tcp://127.0.0.1:1");
  EXPECT_TRUE(options.Validate().ok());
  options.rank = -1;
  EXPECT_FALSE(options.Validate().ok());
  options = WatchOptions("tcp://127.0.0.1:1");
  options.scheduler_timeout_ms = options.heartbeat_interval_ms;
  EXPECT_FALSE(options.Validate().ok());
}

TEST(SchedulerWatchTest, FollowsThePhaseUntilDone) {
  ZmqContext ctx;
  FakeScheduler scheduler(&ctx, kPhaseTraining, "");
  auto watch = SchedulerWatch::Start(&ctx, WatchOptions(scheduler.endpoint()));
  ASSERT_TRUE(watch.ok()) << watch.status();
  for (int i = 0; i < 500 && (*watch)->phase() != kPhaseTraining; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ((*watch)->phase(), kPhaseTraining);
  EXPECT_FALSE((*watch)->ended());
  scheduler.set_phase(kPhaseDone);
  ASSERT_TRUE((*watch)->WaitForEnd(absl::Seconds(10)));
  EXPECT_TRUE((*watch)->status().ok());
  EXPECT_FALSE((*watch)->cancellation()->cancelled());
}

TEST(SchedulerWatchTest, FailedJobCancelsWithTheSchedulersReason) {
  ZmqContext ctx;
  FakeScheduler scheduler(&ctx, kPhaseFailed, "parameter server 1 is dead");
  auto watch = SchedulerWatch::Start(&ctx, WatchOptions(scheduler.endpoint()));
  ASSERT_TRUE(watch.ok());
  ASSERT_TRUE((*watch)->WaitForEnd(absl::Seconds(10)));
  EXPECT_EQ((*watch)->status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ((*watch)->status().message(), "the job failed: parameter server 1 is dead");
  EXPECT_TRUE((*watch)->cancellation()->cancelled());
  EXPECT_EQ((*watch)->cancellation()->reason(), (*watch)->status());
}

// A later epoch in a heartbeat reply cancels the cancellations of earlier epochs (a
// request in flight to a replaced server is abandoned), not the current one's.
TEST(SchedulerWatchTest, NewEpochCancelsTheEarlierEpochsRequests) {
  ZmqContext ctx;
  FakeScheduler scheduler(&ctx, kPhaseTraining, "");
  scheduler.set_epoch(3);
  auto watch = SchedulerWatch::Start(&ctx, WatchOptions(scheduler.endpoint()));
  ASSERT_TRUE(watch.ok());
  for (int i = 0; i < 500 && (*watch)->epoch() != 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ((*watch)->epoch(), 3u);
  std::shared_ptr<const Cancellation> old = (*watch)->EpochCancellation(2);
  EXPECT_TRUE(old->cancelled());
  EXPECT_TRUE(absl::IsUnavailable(old->reason())) << old->reason();
  std::shared_ptr<const Cancellation> current = (*watch)->EpochCancellation(3);
  std::shared_ptr<const Cancellation> ahead = (*watch)->EpochCancellation(4);
  EXPECT_EQ((*watch)->EpochCancellation(3), current);  // one per epoch
  EXPECT_FALSE(current->cancelled());
  scheduler.set_epoch(4);
  ASSERT_TRUE(current->WaitFor(absl::Seconds(10)));
  EXPECT_TRUE(absl::IsUnavailable(current->reason())) << current->reason();
  EXPECT_EQ(current->reason().message(), "membership epoch 3 -> 4");
  EXPECT_FALSE(ahead->cancelled());
  EXPECT_FALSE((*watch)->cancellation()->cancelled());
  // A failed job cancels the live ones with its status.
  scheduler.set_phase(kPhaseFailed);
  ASSERT_TRUE(ahead->WaitFor(absl::Seconds(10)));
  EXPECT_EQ(ahead->reason().code(), absl::StatusCode::kAborted);
  EXPECT_TRUE((*watch)->EpochCancellation(5)->cancelled());
}

TEST(SchedulerWatchTest, RefusedNodeEnds) {
  ZmqContext ctx;
  FakeScheduler scheduler(&ctx, kPhaseTraining, "",
                          absl::FailedPreconditionError("worker 1 was declared dead"));
  auto watch = SchedulerWatch::Start(&ctx, WatchOptions(scheduler.endpoint()));
  ASSERT_TRUE(watch.ok());
  ASSERT_TRUE((*watch)->WaitForEnd(absl::Seconds(10)));
  const std::string message((*watch)->status().message());
  EXPECT_NE(message.find("the scheduler refused this node: "), std::string::npos) << message;
  EXPECT_NE(message.find("worker 1 was declared dead"), std::string::npos) << message;
}

// A restarted scheduler answers NotFound: the node registers again through `rejoin`
// with its state and carries on.
TEST(SchedulerWatchTest, UnknownNodeRejoinsAndCarriesOn) {
  ZmqContext ctx;
  FakeScheduler scheduler(&ctx, kPhaseTraining, "");
  SchedulerWatchOptions options = WatchOptions(scheduler.endpoint());
  std::atomic<int> rejoins{0};
  options.rejoin = [&](MembershipClient* client) {
    ++rejoins;
    Rejoin state;
    state.job_id = 0x77;
    return client->Register(kRoleWorker, 1, "", state).status();
  };
  scheduler.forget_nodes();
  auto watch = SchedulerWatch::Start(&ctx, options);
  ASSERT_TRUE(watch.ok());
  for (int i = 0; i < 500 && scheduler.registrations() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(scheduler.registrations(), 1);
  EXPECT_EQ(scheduler.last_job_id(), 0x77u);
  for (int i = 0; i < 500 && (*watch)->phase() != kPhaseTraining; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ((*watch)->phase(), kPhaseTraining);
  EXPECT_FALSE((*watch)->ended());
  // Longer than scheduler_timeout_ms: the watch follows the scheduler still.
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  EXPECT_FALSE((*watch)->ended());
  EXPECT_EQ(rejoins.load(), 1);
  scheduler.set_phase(kPhaseDone);
  ASSERT_TRUE((*watch)->WaitForEnd(absl::Seconds(10)));
  EXPECT_TRUE((*watch)->status().ok());
}

// The restarted scheduler refuses the registration (another job; the rank was
// taken by a new process): the node ends.
TEST(SchedulerWatchTest, RefusedRejoinEndsTheNode) {
  ZmqContext ctx;
  FakeScheduler scheduler(&ctx, kPhaseTraining, "");
  scheduler.set_register_error(absl::FailedPreconditionError("worker 1 belongs to job 77"));
  scheduler.forget_nodes();
  SchedulerWatchOptions options = WatchOptions(scheduler.endpoint());
  options.rejoin = [](MembershipClient* client) {
    Rejoin state;
    state.job_id = 0x77;
    return client->Register(kRoleWorker, 1, "", state).status();
  };
  auto watch = SchedulerWatch::Start(&ctx, options);
  ASSERT_TRUE(watch.ok());
  ASSERT_TRUE((*watch)->WaitForEnd(absl::Seconds(10)));
  const std::string message((*watch)->status().message());
  EXPECT_EQ((*watch)->status().code(), absl::StatusCode::kAborted);
  EXPECT_NE(message.find("refused this node's registration"), std::string::npos) << message;
  EXPECT_NE(message.find("belongs to job 77"), std::string::npos) << message;
}

// Without a rejoin callback NotFound ends the node like any refusal.
TEST(SchedulerWatchTest, UnknownNodeWithoutRejoinEnds) {
  ZmqContext ctx;
  FakeScheduler scheduler(&ctx, kPhaseTraining, "");
  scheduler.forget_nodes();
  auto watch = SchedulerWatch::Start(&ctx, WatchOptions(scheduler.endpoint()));
  ASSERT_TRUE(watch.ok());
  ASSERT_TRUE((*watch)->WaitForEnd(absl::Seconds(10)));
  EXPECT_EQ((*watch)->status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(scheduler.registrations(), 0);
}

TEST(SchedulerWatchTest, SilentSchedulerIsGivenUpNamingItsEndpoint) {
  ZmqContext ctx;
  std::string endpoint;
  {
    FakeScheduler gone(&ctx, kPhaseTraining, "");  // a port that was just free
    endpoint = gone.endpoint();
  }
  auto watch = SchedulerWatch::Start(&ctx, WatchOptions(endpoint));
  ASSERT_TRUE(watch.ok());
  ASSERT_TRUE((*watch)->WaitForEnd(absl::Seconds(30)));
  EXPECT_NE(
      (*watch)->status().message().find("the scheduler at " + endpoint + " has not answered for"),
      std::string::npos)
      << (*watch)->status();
  EXPECT_TRUE((*watch)->cancellation()->cancelled());
}

// A client with a Cancellation stops waiting for a server that never answers as
// soon as it is cancelled, with the cancellation's reason (not DeadlineExceeded
// after 3 attempts of 60 s).
TEST(SchedulerWatchTest, CancelledClientGivesUpWithTheReason) {
  ZmqContext ctx;
  std::string endpoint;
  {
    FakeScheduler gone(&ctx, kPhaseTraining, "");
    endpoint = gone.endpoint();
  }
  Cancellation cancel;
  RpcClientOptions options;
  options.endpoint = endpoint;
  options.timeout_ms = 60000;
  options.cancel = &cancel;
  auto client = MembershipClient::Connect(&ctx, options);
  ASSERT_TRUE(client.ok());
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    cancel.Cancel(absl::AbortedError("the job failed: parameter server 1 is dead"));
  });
  auto beat = (*client)->Heartbeat(kRoleWorker, 0);
  canceller.join();
  EXPECT_EQ(beat.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(beat.status().message(), "the job failed: parameter server 1 is dead");
}

}  // namespace
}  // namespace towerps::net
