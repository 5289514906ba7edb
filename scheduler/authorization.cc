// Who may send what to the scheduler (AuthorizeSchedulerRequest, scheduler.h).
#include "absl/strings/str_cat.h"
#include "net/curve_keys.h"
#include "net/membership_client.h"
#include "scheduler/scheduler.h"

namespace towerps::scheduler {
namespace {

using net::wire::Envelope;

// "ps/<rank>" or "worker/<rank>" for a role and rank as numbered on the wire.
std::string WireIdentity(uint8_t role, int32_t rank) {
  return net::NodeIdentity(role == net::kRoleServer ? "ps" : "worker", rank);
}

}  // namespace

absl::Status AuthorizeSchedulerRequest(const net::Peer& peer, const Envelope::Reader& request) {
  auto body = request.getBody();
  switch (body.which()) {
    case Envelope::Body::REGISTER: {
      auto r = body.getRegister();
      if (peer.Is(WireIdentity(r.getRole(), r.getRank()))) return absl::OkStatus();
      return net::PermissionDenied(
          peer, absl::StrCat("register as ", WireIdentity(r.getRole(), r.getRank())));
    }
    case Envelope::Body::CLUSTER_QUERY: {
      auto q = body.getClusterQuery();
      if (peer.Is(WireIdentity(q.getRole(), q.getRank())) || peer.Is(net::kOperatorIdentity)) {
        return absl::OkStatus();
      }
      return net::PermissionDenied(peer, "query the cluster for another node");
    }
    case Envelope::Body::HEARTBEAT: {
      auto h = body.getHeartbeat();
      if (peer.Is(WireIdentity(h.getRole(), h.getRank()))) return absl::OkStatus();
      return net::PermissionDenied(
          peer, absl::StrCat("heartbeat for ", WireIdentity(h.getRole(), h.getRank())));
    }
    case Envelope::Body::CLOCK:
      if (peer.Is(net::NodeIdentity("worker", body.getClock().getRank()))) return absl::OkStatus();
      return net::PermissionDenied(
          peer, absl::StrCat("report the clock of worker ", body.getClock().getRank()));
    case Envelope::Body::PARTITION:
      if (peer.Is(net::NodeIdentity("worker", body.getPartition().getRank()))) {
        return absl::OkStatus();
      }
      return net::PermissionDenied(
          peer, absl::StrCat("report partitions of worker ", body.getPartition().getRank()));
    case Envelope::Body::CONTROL:
      if (body.getControl().getCommand() == "status" || peer.Is(net::kOperatorIdentity)) {
        return absl::OkStatus();
      }
      return net::PermissionDenied(peer, "control the job (only the operator key may)");
    default:
      return absl::OkStatus();  // Ping; other kinds are refused by Handle.
  }
}

}  // namespace towerps::scheduler
