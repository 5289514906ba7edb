#include "net/membership_client.h"

#include <capnp/message.h>

#include <cmath>
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "net/codec.h"
#include "net/transport.h"

namespace towerps::net {
namespace {

// A scheduler stand-in whose clock replies carry `scale`.
std::unique_ptr<RpcServer> FakeScheduler(const ZmqContext* ctx, float scale) {
  auto server = RpcServer::Start(
      ctx, RpcServerOptions(),
      [scale](const wire::Envelope::Reader& r) -> absl::StatusOr<std::string> {
        capnp::MallocMessageBuilder message;
        auto reply = message.initRoot<wire::Envelope>();
        InitEnvelope(reply, "scheduler", r.getRequestId());
        auto clock = reply.getBody().initClockReply();
        clock.setGlobalStep(3);
        clock.setLrScale(scale);
        return EncodeMessage(message);
      },
      nullptr);
  EXPECT_TRUE(server.ok()) << server.status();
  return std::move(server).value();
}

// The scale multiplies every learning rate a worker pushes: one from the wire that is
// NaN, negative or above 1 is refused instead of poisoning every update.
TEST(MembershipClientTest, ClockWithABadLearningRateScaleIsRefused) {
  ZmqContext ctx;
  // All kept alive: a server made at a freed one's address would reuse its inproc name.
  std::vector<std::unique_ptr<RpcServer>> servers;
  for (float scale : {0.5f, NAN, -1.0f, 2.0f, INFINITY}) {
    servers.push_back(FakeScheduler(&ctx, scale));
    RpcServer* server = servers.back().get();
    RpcClientOptions options;
    options.endpoint = server->endpoint();
    options.timeout_ms = 2000;
    auto client = MembershipClient::Connect(&ctx, options);
    ASSERT_TRUE(client.ok()) << client.status();
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
