// The authenticated sender of a request (RpcServer hands it to every handler) and
// the helpers authorisation rules are written with (docs/security.md). A value type;
// thread-compatible.
#ifndef TOWERPS_NET_PEER_H_
#define TOWERPS_NET_PEER_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace towerps::net {

// Who sent a request, as the process's ZapAuthenticator authenticated it.
struct Peer {
  // The identity of the peer's CURVE key ("worker/1", "operator"); empty when CURVE
  // is off (insecure mode: every peer is trusted).
  std::string identity;

  bool authenticated() const { return !identity.empty(); }
  // True when CURVE is off, or the identity is exactly `expected`.
  bool Is(absl::string_view expected) const;
  // True when CURVE is off, or the identity is "<role>/<any rank>".
  bool HasRole(absl::string_view role) const;
};

// PermissionDenied naming the peer and `what` it may not do.
absl::Status PermissionDenied(const Peer& peer, absl::string_view what);

}  // namespace towerps::net

#endif  // TOWERPS_NET_PEER_H_
