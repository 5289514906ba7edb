// Applies each (client id, sequence number) once: a retried push whose first copy
// was applied (or is being applied) is recognised and skipped. Sequence numbers of
// one client increase but may arrive out of order (several pushes in flight).
//
// Per client: every seq below `low` has been claimed, plus a set of claimed seqs at or
// above it; `low` advances as the gaps fill, so memory stays proportional to the
// number of pushes in flight.
//
// RetireAll (a restore replaced the parameters) retires every client seen so far: a
// push of theirs that arrives later (one sent before the workers learnt of the
// restore) must not be applied to the restored state. Workers reconnect with new
// client ids. Thread-safe.
#ifndef TOWERPS_PS_PUSH_DEDUP_H_
#define TOWERPS_PS_PUSH_DEDUP_H_

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"

namespace towerps::ps {

class PushDedup {
 public:
  // True the first time (client_id, seq) is seen: the caller applies the push.
  // False for a duplicate. Sequence numbers start at 1.
  bool Claim(uint64_t client_id, uint64_t seq);
  // True for a client retired by RetireAll: its pushes are refused.
  bool Retired(uint64_t client_id) const;
  void RetireAll();

 private:
  struct ClientWindow {
    uint64_t low = 1;  // every seq < low is claimed
    absl::flat_hash_set<uint64_t> above;
  };
  mutable absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, ClientWindow> clients_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<uint64_t> retired_ ABSL_GUARDED_BY(mu_);
};

}  // namespace towerps::ps

#endif  // TOWERPS_PS_PUSH_DEDUP_H_
