#include "ps/push_dedup.h"

namespace towerps::ps {

bool PushDedup::Claim(uint64_t client_id, uint64_t seq) {
  absl::MutexLock lock(&mu_);
  ClientWindow& w = clients_[client_id];
  if (seq < w.low || !w.above.insert(seq).second) return false;
  while (w.above.erase(w.low) > 0) ++w.low;
  return true;
}

bool PushDedup::Retired(uint64_t client_id) const {
  absl::MutexLock lock(&mu_);
  return retired_.contains(client_id);
}

void PushDedup::RetireAll() {
  absl::MutexLock lock(&mu_);
  for (const auto& [client_id, window] : clients_) retired_.insert(client_id);
  clients_.clear();
}

}  // namespace towerps::ps
