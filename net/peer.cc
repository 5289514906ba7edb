#include "net/peer.h"

#include "absl/strings/str_cat.h"

namespace towerps::net {

bool Peer::Is(absl::string_view expected) const { return !authenticated() || identity == expected; }

bool Peer::HasRole(absl::string_view role) const {
  if (!authenticated()) return true;
  return identity.size() > role.size() &&
         absl::string_view(identity).substr(0, role.size()) == role && identity[role.size()] == '/';
}

absl::Status PermissionDenied(const Peer& peer, absl::string_view what) {
  return absl::PermissionDeniedError(absl::StrCat(peer.identity, " may not ", what));
}

}  // namespace towerps::net
