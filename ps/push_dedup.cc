#include "ps/push_dedup.h"

namespace towerps::ps {

bool PushDedup::Claim(uint64_t client_id, uint64_t seq) {
  absl::MutexLock lock(&mu_);
  ClientWindow& w = clients_[client_id];
  if (seq < w.low || !w.above.insert(seq).second) return false;
  while (w.above.erase(w.low) > 0) ++w.low;
  return true;
}

}  // namespace towerps::ps
