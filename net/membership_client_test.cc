#include "net/membership_client.h"

#include <capnp/message.h>

#include <cmath>
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "net/fake_scheduler.h"

namespace towerps::net {
namespace {

// The scale multiplies every learning rate a worker pushes: one from the wire that is
// NaN, negative or above 1 is refused instead of poisoning every update.
TEST(MembershipClientTest, ClockWithABadLearningRateScaleIsRefused) {
  ZmqContext ctx;
  FakeScheduler scheduler(&ctx, kPhaseTraining, "");
  RpcClientOptions options;
  options.endpoint = scheduler.endpoint();
  options.timeout_ms = 2000;
  auto client = MembershipClient::Connect(&ctx, options);
  ASSERT_TRUE(client.ok()) << client.status();
  for (float scale : {0.5f, NAN, -1.0f, 2.0f, INFINITY}) {
    scheduler.set_lr_scale(scale);
    auto clock = (*client)->Heartbeat(kRoleWorker, 0);
    if (scale == 0.5f) {
      ASSERT_TRUE(clock.ok()) << clock.status();
      EXPECT_EQ(clock->lr_scale, 0.5f);
    } else {
      EXPECT_EQ(clock.status().code(), absl::StatusCode::kDataLoss) << scale;
    }
  }
}

}  // namespace
}  // namespace towerps::net
