// Recovery helpers of the scheduler (docs/distributed.md, "Recovery"): the
// checkpoint a replaced server or a rolled-back job restores, and the restore order
// sent to one parameter server. The flow itself (phase recovering, waiting for the
// replacement, rollback of synchronous jobs) is Scheduler's, in recovery.cc.
#ifndef TOWERPS_SCHEDULER_RECOVERY_H_
#define TOWERPS_SCHEDULER_RECOVERY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "net/transport.h"
#include "ps/checkpoint.h"

namespace towerps::scheduler {

// The newest complete checkpoint of job `job_id` under `root` (ps::LatestCheckpoint).
struct RecoveryPoint {
  std::string dir;  // "" when there is none (then step 0, no partitions)
  int64_t step = 0;
  std::vector<ps::PartitionProgress> partitions;
};
// No checkpoint (or `root` empty, or the newest one is of another job): an empty
// RecoveryPoint. Errors: a MANIFEST that cannot be read after it was verified.
absl::StatusOr<RecoveryPoint> NewestRecoveryPoint(const std::string& root, uint64_t job_id);

// Orders the parameter server at `rpc.endpoint` to restore its files of checkpoint
// `step` (Checkpoint{restore}). A server still starting answers Unavailable: the
// order is repeated every 100 ms until `deadline_ms` (clock's milliseconds) or
// `stop`. Each attempt waits up to rpc.timeout_ms, or until rpc.cancel (if set) is
// cancelled. Errors: the server's refusal, the transport's error, rpc.cancel's
// reason, Cancelled on stop.
absl::Status OrderRestore(const net::ZmqContext* ctx, net::RpcClientOptions rpc, int64_t step,
                          uint64_t job_id, int64_t deadline_ms, const Clock* clock,
                          const absl::Notification* stop);

}  // namespace towerps::scheduler

#endif  // TOWERPS_SCHEDULER_RECOVERY_H_
