// A typed client of the scheduler's membership protocol (register, cluster view,
// heartbeat, clock, partitions, control), used by parameter servers, workers and
// `towerps ctl`. Every call is one request with the RpcClient's deadlines; all
// are safe to retry (register re-takes the same rank; reports are monotonic).
// Thread-compatible: owned by one thread.
#ifndef TOWERPS_NET_MEMBERSHIP_CLIENT_H_
#define TOWERPS_NET_MEMBERSHIP_CLIENT_H_

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "net/transport.h"

namespace towerps::net {

// Roles and phases as numbered on the wire (scheduler::Role, scheduler::Phase).
inline constexpr uint8_t kRoleServer = 0;
inline constexpr uint8_t kRoleWorker = 1;
inline constexpr uint8_t kPhaseRegistering = 0;
inline constexpr uint8_t kPhaseTraining = 1;
inline constexpr uint8_t kPhasePaused = 2;
inline constexpr uint8_t kPhaseDone = 3;
inline constexpr uint8_t kPhaseFailed = 4;
// Stopping (SIGTERM or `ctl stop`): workers report their progress and leave, then
// the scheduler writes the final checkpoint and moves to done.
inline constexpr uint8_t kPhaseStopping = 5;
// Recovering: a parameter server is being replaced (or the whole job rolled back to
// a checkpoint); workers hold their next step until training resumes.
inline constexpr uint8_t kPhaseRecovering = 6;

// The name of a wire phase ("training", ...; "unknown" for other values).
const char* PhaseName(uint8_t phase);

struct ClusterView {
  int rank = -1;
  uint8_t phase = kPhaseRegistering;
  std::vector<std::string> server_endpoints;  // empty while registering
  std::string shard_owners;                   // ShardMap wire form
  int num_servers = 0;
  int num_workers = 0;
  int num_partitions = 0;
  int64_t staleness = -1;
  std::string reason;          // why the job failed or is stopping; else empty
  uint64_t job_id = 0;        // the job's random id (checkpoint files are bound to it)
  int64_t restore_step = -1;  // a resumed job's checkpoint step (servers load it), or -1
  // Workers: the rank's clock to continue counting from (a replaced worker continues
  // its predecessor's count; after a rollback, 0).
  int64_t finished_steps = 0;
  // Membership epoch: changes when a server is replaced or the job rolls back.
  uint64_t epoch = 0;
  // The latest epoch that began with a rollback of the whole job to checkpoint step
  // restore_step (0: none).
  uint64_t rollback_epoch = 0;
};

// A data partition's progress as a worker knows it (wire::PartitionState).
struct PartitionState {
  int id = 0;
  int64_t offset = 0;
  bool done = false;
};

// What a process that already belongs to a job tells a restarted scheduler when it
// registers again (wire Register fields); the default is a new process.
struct Rejoin {
  uint64_t job_id = 0;          // 0: a new process (a replacement)
  int64_t finished_steps = 0;   // workers: their clock
  int64_t global_step = -1;     // the last global step seen
  std::vector<PartitionState> partitions;  // workers: held (offset reached) or finished
};

struct ClockView {
  bool may_start = false;
  int64_t global_step = 0;
  float lr_scale = 0;
  uint8_t phase = kPhaseRegistering;
  std::string reason;  // why the job failed or is stopping; else empty
  uint64_t epoch = 0;  // ClusterView::epoch: a new one means re-query the cluster
};

// What a worker says about its training with each Clock (for `towerps ctl status`).
struct ClockStats {
  // Mean training loss of the steps finished since the worker's previous Clock; NaN
  // when none finished.
  float loss = std::numeric_limits<float>::quiet_NaN();
  // Training examples this worker process has finished in total (a new process
  // starts again at 0).
  int64_t examples = 0;
};

// The scheduler's answer to a partition request.
struct PartitionGrant {
  int partition = -1;  // next partition to read, -1 for none now
  int64_t offset = 0;  // where to resume in it
  // partition -1 while other workers still hold unfinished partitions: stay in the
  // job and ask again later. false with -1: no data is left anywhere.
  bool wait = false;
};

class MembershipClient {
 public:
  static absl::StatusOr<std::unique_ptr<MembershipClient>> Connect(const ZmqContext* ctx,
                                                                   const RpcClientOptions& options);

  absl::StatusOr<ClusterView> Register(uint8_t role, int rank, const std::string& endpoint,
                                       const Rejoin& rejoin = {});
  absl::StatusOr<ClusterView> Query(uint8_t role, int rank);
  // Polls Query every poll_ms until the phase is past registering (DeadlineExceeded
  // after timeout_ms; Cancelled once `stop`, borrowed and may be null, is notified).
  absl::StatusOr<ClusterView> WaitForCluster(uint8_t role, int rank, int64_t timeout_ms,
                                             int64_t poll_ms = 20,
                                             const absl::Notification* stop = nullptr);
  // Heartbeat and Clock return DataLoss for a reply whose lr_scale is outside [0, 1].
  absl::StatusOr<ClockView> Heartbeat(uint8_t role, int rank);
  // `partition` / `offset`: the partition being read and the records consumed in it
  // (-1: none), reported with the clock, as are `stats`.
  absl::StatusOr<ClockView> Clock(int rank, int64_t finished_steps, int64_t next_step,
                                  bool finished, int partition = -1, int64_t offset = 0,
                                  const ClockStats& stats = {});
  // Reports progress on `partition` (-1: none) and returns the next grant.
  absl::StatusOr<PartitionGrant> Partition(int rank, int partition, int64_t offset, bool done);
  // status | pause | resume | checkpoint | stop; returns the job's status JSON.
  absl::StatusOr<std::string> Control(const std::string& command);

 private:
  explicit MembershipClient(std::unique_ptr<RpcClient> rpc) : rpc_(std::move(rpc)) {}
  template <typename Fill>
  absl::StatusOr<Message> Call(Fill&& fill);

  std::unique_ptr<RpcClient> rpc_;
};

}  // namespace towerps::net

#endif  // TOWERPS_NET_MEMBERSHIP_CLIENT_H_
