// Who may send what (docs/security.md): the scheduler's and the parameter server's
// authorisation rules, as tables of (peer identity, request) -> allowed.
#include <capnp/message.h>

#include <functional>
#include <string>

#include "gtest/gtest.h"
#include "net/codec.h"
#include "net/membership_client.h"
#include "ps/ps_node.h"
#include "scheduler/scheduler.h"

namespace towerps::scheduler {
namespace {

using net::wire::Envelope;

struct Case {
  std::string peer;  // "" = CURVE off
  std::string what;
  std::function<void(Envelope::Body::Builder)> fill;
  bool allowed;
};

absl::Status Check(const Case& c, bool scheduler) {
  capnp::MallocMessageBuilder message;
  auto envelope = message.initRoot<Envelope>();
  net::InitEnvelope(envelope, "test", 1);
  c.fill(envelope.getBody());
  net::Peer peer{c.peer};
  auto reader = envelope.asReader();
  return scheduler ? AuthorizeSchedulerRequest(peer, reader) : ps::AuthorizePsRequest(peer, reader);
}

template <size_t N>
void ExpectRules(const Case (&cases)[N], bool scheduler) {
  for (const Case& c : cases) {
    absl::Status status = Check(c, scheduler);
    EXPECT_EQ(status.ok(), c.allowed) << c.peer << ": " << c.what << ": " << status;
    EXPECT_EQ(status.code(),
              c.allowed ? absl::StatusCode::kOk : absl::StatusCode::kPermissionDenied);
  }
}

void Register(Envelope::Body::Builder b, uint8_t role, int rank) {
  auto r = b.initRegister();
  r.setRole(role);
  r.setRank(rank);
}
void Clock(Envelope::Body::Builder b, int rank) { b.initClock().setRank(rank); }
void Control(Envelope::Body::Builder b, const char* command) {
  b.initControl().setCommand(command);
}

TEST(AuthorizationTest, SchedulerLetsNodesSpeakOnlyForThemselves) {
  const Case cases[] = {
      {"", "anything without CURVE", [](auto b) { Control(b, "stop"); }, true},
      {"", "a clock for any rank without CURVE", [](auto b) { Clock(b, 5); }, true},
      {"ps/0", "register as ps 0", [](auto b) { Register(b, net::kRoleServer, 0); }, true},
      {"ps/0", "register as ps 1", [](auto b) { Register(b, net::kRoleServer, 1); }, false},
      {"ps/0", "register as worker 0", [](auto b) { Register(b, net::kRoleWorker, 0); }, false},
      {"worker/1", "register as any rank", [](auto b) { Register(b, net::kRoleWorker, -1); },
       false},
      {"worker/1", "its clock", [](auto b) { Clock(b, 1); }, true},
      {"worker/1", "another rank's clock", [](auto b) { Clock(b, 0); }, false},
      {"ps/1", "a worker's clock", [](auto b) { Clock(b, 1); }, false},
      {"worker/1", "its partitions", [](auto b) { b.initPartition().setRank(1); }, true},
      {"worker/1", "another's partitions", [](auto b) { b.initPartition().setRank(2); }, false},
      {"worker/1", "a server's heartbeat",
       [](auto b) {
         auto h = b.initHeartbeat();
         h.setRole(net::kRoleServer);
         h.setRank(1);
       },
       false},
      {"operator", "a cluster query for anyone",
       [](auto b) {
         auto q = b.initClusterQuery();
         q.setRole(net::kRoleWorker);
         q.setRank(-1);
       },
       true},
      {"worker/1", "status", [](auto b) { Control(b, "status"); }, true},
      {"worker/1", "stop", [](auto b) { Control(b, "stop"); }, false},
      {"scheduler", "pause", [](auto b) { Control(b, "pause"); }, false},
      {"operator", "stop", [](auto b) { Control(b, "stop"); }, true},
      {"serve", "ping", [](auto b) { b.initPing(); }, true},
  };
  ExpectRules(cases, /*scheduler=*/true);
}

TEST(AuthorizationTest, ServersTakeTrafficFromWorkersAndOrdersFromTheScheduler) {
  const Case cases[] = {
      {"", "a checkpoint without CURVE", [](auto b) { b.initCheckpoint(); }, true},
      {"worker/0", "pull", [](auto b) { b.initPullSparse().setCreate(true); }, true},
      {"worker/0", "push", [](auto b) { b.initPushSparse(); }, true},
      {"worker/0", "push dense", [](auto b) { b.initPushDense(); }, true},
      {"worker/0", "checkpoint", [](auto b) { b.initCheckpoint(); }, false},
      {"worker/0", "restore", [](auto b) { b.initCheckpoint().setRestore(true); }, false},
      {"scheduler", "checkpoint", [](auto b) { b.initCheckpoint(); }, true},
      {"scheduler", "push", [](auto b) { b.initPushSparse(); }, false},
      {"operator", "read rows", [](auto b) { b.initPullSparse().setCreate(false); }, true},
      {"operator", "create rows", [](auto b) { b.initPullSparse().setCreate(true); }, false},
      {"operator", "pull dense", [](auto b) { b.initPullDense(); }, true},
      {"operator", "push", [](auto b) { b.initPushSparse(); }, false},
      {"operator", "checkpoint", [](auto b) { b.initCheckpoint(); }, false},
      {"ps/1", "push", [](auto b) { b.initPushSparse(); }, false},
      {"serve", "pull", [](auto b) { b.initPullSparse(); }, false},
  };
  ExpectRules(cases, /*scheduler=*/false);
}

}  // namespace
}  // namespace towerps::scheduler
