// The progress figures of the scheduler's status JSON (docs/distributed.md,
// "Watching a job"), driven through Handle with a FakeClock.
#include <capnp/message.h>

#include <cmath>
#include <limits>

#include "gtest/gtest.h"
#include "net/codec.h"
#include "nlohmann/json.hpp"
#include "scheduler/scheduler.h"

namespace towerps::scheduler {
namespace {

using net::wire::Envelope;
using nlohmann::json;

class SchedulerStatusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SchedulerOptions options;
    options.job.num_servers = 1;
    options.job.num_workers = 2;
    options.job.num_partitions = 2;
    options.job.staleness = -1;
    options.job.heartbeat_timeout_ms = 60000;
    options.num_virtual_shards = 16;
    options.lr_scale.base_lr = 1.0;
    options.planned_steps = 1000;
    options.monitor_interval_ms = 3600000;  // the monitor stays out of the way
    auto scheduler = Scheduler::Start(&ctx_, options, nullptr, &clock_);
    ASSERT_TRUE(scheduler.ok()) << scheduler.status();
    scheduler_ = std::move(scheduler).value();
  }

  absl::Status Send(const std::function<void(Envelope::Body::Builder)>& fill) {
    capnp::MallocMessageBuilder message;
    auto envelope = message.initRoot<Envelope>();
    net::InitEnvelope(envelope, "test", 1);
    fill(envelope.getBody());
    return scheduler_->Handle(net::Peer(), envelope.asReader()).status();
  }
  absl::Status Register(uint8_t role, int rank) {
    return Send([&](Envelope::Body::Builder b) {
      auto r = b.initRegister();
      r.setRole(role);
      r.setRank(rank);
      r.setEndpoint(role == 0 ? "tcp://127.0.0.1:1" : "");
    });
  }
  absl::Status Clock(int rank, int64_t steps, float loss, int64_t examples) {
    return Send([&](Envelope::Body::Builder b) {
      auto c = b.initClock();
      c.setRank(rank);
      c.setFinishedSteps(steps);
      c.setNextStep(steps);
      c.setLoss(loss);
      c.setExamples(examples);
    });
  }
  json Status() {
    json status = json::parse(scheduler_->StatusJson(), nullptr, false);
    EXPECT_FALSE(status.is_discarded());
    return status;
  }
  void AdvanceMs(int64_t ms) { clock_.AdvanceMicros(ms * 1000); }

  net::ZmqContext ctx_;
  FakeClock clock_{1000000};
  std::unique_ptr<Scheduler> scheduler_;
};

TEST_F(SchedulerStatusTest, BeforeAnyReportTheFiguresAreUnknown) {
  AdvanceMs(1500);
  json s = Status();
  EXPECT_EQ(s["planned_steps"], 1000);
  EXPECT_DOUBLE_EQ(s["elapsed_s"].get<double>(), 1.5);
  EXPECT_EQ(s["steps_per_s"], 0);
  EXPECT_EQ(s["examples_per_s"], 0);
  EXPECT_EQ(s["eta_s"], -1);
  EXPECT_TRUE(s["loss"].is_null());
  EXPECT_EQ(s["last_checkpoint_step"], -1);
  EXPECT_EQ(s["last_checkpoint_age_s"], -1);
  EXPECT_EQ(s["servers"][0]["last_seen_s"], -1);  // not registered
  EXPECT_TRUE(s["workers"][1]["loss"].is_null());
}

TEST_F(SchedulerStatusTest, RatesEtaLossAndLiveness) {
  ASSERT_TRUE(Register(0, -1).ok());
  ASSERT_TRUE(Register(1, -1).ok());
  ASSERT_TRUE(Register(1, -1).ok());
  // 4 s of training: each worker 5 steps/s of 32 examples.
  for (int t = 0; t <= 4; ++t) {
    ASSERT_TRUE(Clock(0, 5 * t, 3.0f, 160 * t).ok());
    ASSERT_TRUE(Clock(1, 5 * t, 5.0f, 160 * t).ok());
    if (t < 4) AdvanceMs(1000);
  }
  ASSERT_TRUE(Send([](Envelope::Body::Builder b) {
                auto h = b.initHeartbeat();
                h.setRole(0);
                h.setRank(0);
              }).ok());
  AdvanceMs(500);
  json s = Status();
  EXPECT_EQ(s["global_step"], 40);
  EXPECT_DOUBLE_EQ(s["steps_per_s"].get<double>(), 10.0);
  EXPECT_DOUBLE_EQ(s["examples_per_s"].get<double>(), 320.0);
  EXPECT_DOUBLE_EQ(s["eta_s"].get<double>(), (1000.0 - 40.0) / 10.0);
  EXPECT_DOUBLE_EQ(s["loss"].get<double>(), 4.0);
  EXPECT_DOUBLE_EQ(s["workers"][0]["loss"].get<double>(), 3.0);
  EXPECT_EQ(s["workers"][1]["examples"], 640);
  EXPECT_DOUBLE_EQ(s["workers"][1]["last_seen_s"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(s["servers"][0]["last_seen_s"].get<double>(), 0.5);

  // A hostile worker 1: NaN, infinite, negative and huge losses, a negative, a
  // lower and an enormous examples count. Nothing moves but its clock.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  ASSERT_TRUE(Clock(1, 21, nan, -7).ok());
  ASSERT_TRUE(Clock(1, 22, inf, 3).ok());
  ASSERT_TRUE(Clock(1, 23, -2.0f, std::numeric_limits<int64_t>::max()).ok());
  ASSERT_TRUE(Clock(1, 24, 3e38f, int64_t{1} << 60).ok());
  s = Status();
  EXPECT_DOUBLE_EQ(s["loss"].get<double>(), 4.0);
  EXPECT_EQ(s["workers"][1]["examples"], 640);
  EXPECT_TRUE(std::isfinite(s["examples_per_s"].get<double>()));
  EXPECT_GE(s["examples_per_s"].get<double>(), 0);
  EXPECT_TRUE(std::isfinite(s["eta_s"].get<double>()));
}

TEST_F(SchedulerStatusTest, AReplacedWorkersExamplesCountOnFromItsPredecessors) {
  ASSERT_TRUE(Register(0, -1).ok());
  ASSERT_TRUE(Register(1, -1).ok());
  ASSERT_TRUE(Register(1, -1).ok());
  ASSERT_TRUE(Clock(0, 10, 2.0f, 320).ok());
  ASSERT_TRUE(Clock(1, 10, 6.0f, 320).ok());
  EXPECT_DOUBLE_EQ(Status()["loss"].get<double>(), 4.0);
  // Worker 1's process is replaced (a new process, job id 0, takes its rank): its
  // own count starts again at 0, the rank's goes on.
  ASSERT_TRUE(Register(1, 1).ok());
  ASSERT_TRUE(Clock(1, 12, nan(""), 64).ok());
  json s = Status();
  EXPECT_EQ(s["workers"][1]["examples"], 384);
  ASSERT_TRUE(Clock(1, 14, 4.0f, 128).ok());
  s = Status();
  EXPECT_EQ(s["workers"][1]["examples"], 448);
  EXPECT_DOUBLE_EQ(s["loss"].get<double>(), 3.0);
}

}  // namespace
}  // namespace towerps::scheduler
