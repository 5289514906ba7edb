// The scheduler's bookkeeping, free of networking so it can be tested with a
// FakeClock: membership and ranks, liveness, the global step clock with bounded
// staleness, data-partition assignment and hand-over, checkpoint triggers (with the
// synchronous checkpoint barrier), the job's phases and the recovery rules
// (docs/distributed.md): replacement of a
// held rank, epochs and rollbacks, and adopting a job after a scheduler restart. The
// RPC layer (scheduler.h) calls it under its own mutex.
//
// Thread-compatible.
//
// Clock semantics: a worker reports the number of steps (batches) it has finished.
// The global step is the sum over workers: the number of updates the parameters have
// received, which drives the learning-rate schedule exactly as embedded mode's
// batch counter does. Bounded staleness s: a worker may start its step t (0-based)
// only while t - (slowest live worker's finished steps) <= s; s = 0 is synchronous,
// s < 0 is unbounded (fully asynchronous).
#ifndef TOWERPS_SCHEDULER_JOB_STATE_H_
#define TOWERPS_SCHEDULER_JOB_STATE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "ps/checkpoint.h"

namespace towerps::scheduler {

enum class Role { kServer = 0, kWorker = 1 };
// As numbered on the wire (net/membership_client.h). kStopping: a stop was asked for
// (SIGTERM, `ctl stop`); workers report their progress and leave, then the final
// checkpoint is written and the job is done.
enum class Phase {
  kRegistering = 0,
  kTraining = 1,
  kPaused = 2,
  kDone = 3,
  kFailed = 4,
  kStopping = 5,
  kRecovering = 6,  // a server is being replaced or the job rolls back (net::kPhaseRecovering)
};

const char* RoleName(Role role);
// A role as numbered on the wire; InvalidArgument for an unknown one.
absl::StatusOr<Role> RoleFromWire(uint8_t role);
const char* PhaseName(Phase phase);

struct JobStateOptions {
  // Parameter servers and workers the job waits for; > 0.
  int num_servers = 1;
  int num_workers = 1;
  // Data partitions handed to workers (e.g. example shards); >= num_workers.
  int num_partitions = 1;
  // Bounded staleness in steps; 0 synchronous, < 0 unbounded.
  int64_t staleness = -1;
  // A node silent for longer than this is declared dead; > 0. Also how long an
  // unfinished partition may wait without any live worker left to take it before
  // the job fails (a restarted worker may re-take a dead rank meanwhile).
  int64_t heartbeat_timeout_ms = 10000;
  // Coordinated checkpoint every this many global steps (0 = never by steps).
  int64_t checkpoint_every_steps = 0;
  // ... or every this many milliseconds of training (0 = never by time).
  int64_t checkpoint_every_ms = 0;
  // A synchronous job's checkpoint barrier holds the workers at a clock that is a
  // multiple of this (the model's dense_sync_every: no worker holds dense gradients
  // then, so a rollback replays the unfaulted run); >= 1.
  int64_t checkpoint_clock_multiple = 1;

  absl::Status Validate() const;
};

struct NodeInfo {
  Role role = Role::kServer;
  int rank = -1;
  std::string endpoint;  // where the node serves RPCs (servers), or "" (workers)
  bool alive = false;
  int64_t last_heartbeat_ms = 0;
  int64_t finished_steps = 0;  // workers: steps finished, as last reported
  bool finished = false;       // workers: left the job (no data left, or stopped)
  uint64_t seen_epoch = 0;     // workers: the epoch of their last cluster view
  bool at_barrier = false;     // workers: refused their next step at a checkpoint barrier
};

// What a registering process says about itself (wire Register).
// The largest step count or record offset a node may report (2^48: far beyond any
// job, and sums of a few thousand of them cannot overflow).
inline constexpr int64_t kMaxReportedCount = int64_t{1} << 48;

struct Registration {
  uint64_t job_id = 0;         // 0: a new process (a replacement or a first start)
  int64_t finished_steps = 0;  // workers of this job: their clock
  int64_t global_step = -1;    // the last global step the process saw, -1 for none
  std::vector<ps::PartitionProgress> partitions;  // workers: held or finished ones
};

// The outcome of a registration.
struct Registered {
  int rank = -1;
  // A process of this job: re-registering with a restarted scheduler, or retrying
  // its registration. Servers keep their state (no restore).
  bool survivor = false;
  // A live holder of the rank was declared dead and replaced by this process.
  bool replaced = false;
  // Workers: the rank's clock to continue counting from.
  int64_t finished_steps = 0;
};

// A data partition and how far its reader got.
struct PartitionInfo {
  int id = 0;
  int owner = -1;             // worker rank, or -1 while unassigned
  bool done = false;          // fully consumed
  int64_t resume_offset = 0;  // records consumed, for the hand-over
};

class JobState {
 public:
  explicit JobState(const JobStateOptions& options);

  // The job's id: registrations carrying another non-zero id are refused.
  void set_job_id(uint64_t job_id) { job_id_ = job_id; }
  uint64_t job_id() const { return job_id_; }

  // Registers a node. `rank` = -1 asks for the next free rank; a rank whose node was
  // declared dead may be re-taken by its restarted process (a worker continues the
  // rank's clock). A rank held by a live node:
  //   - the same job id (non-zero) and endpoint: an idempotent retry of that process;
  //   - job id 0 or another endpoint: the process was restarted: the old holder is
  //     declared dead (a worker's unfinished partitions are released at their
  //     reported offsets) and the new one takes the rank (Registered::replaced).
  // While adopting a job (AdoptJob), a process of this job (job id == job_id())
  // brings its state: a worker's clock, partitions (merged: the largest offset, done
  // if any says done; it keeps the unfinished ones) and global step. A new worker
  // then starts from the smallest clock of the workers back so far.
  // Moves a registering job to kTraining when every server and worker has
  // registered (an adopted job's global step is then recovered). Errors:
  // ResourceExhausted when the role is full, InvalidArgument for a rank out of range
  // or a bad partition, FailedPrecondition for a process of another job or one of
  // this job re-registering for a rank declared dead (it must restart as new).
  absl::StatusOr<Registered> Register(Role role, int rank, const std::string& endpoint,
                                      int64_t now_ms, const Registration& info = {});

  // Records liveness. NotFound for an unregistered node (e.g. after a scheduler
  // restart: it re-registers); FailedPrecondition for one declared dead or replaced.
  absl::Status Heartbeat(Role role, int rank, int64_t now_ms);

  // Declares nodes silent for longer than the timeout dead and returns them (each
  // once). A dead worker's unfinished partitions become unassigned (hand-over).
  // Workers that left the job (finished) are no longer watched.
  std::vector<NodeInfo> DetectFailures(int64_t now_ms);

  // A worker reports `finished_steps` (monotonic) and, with `partition` >= 0, the
  // records consumed in that partition (recorded when it owns it). Also a heartbeat.
  // A worker that has not seen the latest rollback (no cluster view since) is
  // stale: its report is ignored (OK) and it may not start steps.
  absl::Status ReportClock(int rank, int64_t finished_steps, int64_t now_ms, int partition = -1,
                           int64_t offset = 0);

  // Worker `rank` leaves the job: no data is left for it, or it is stopping. It
  // stops pacing the others and is no longer watched; partitions it still holds
  // unfinished are released at their reported offsets for other workers.
  absl::Status MarkWorkerFinished(int rank);
  // Every worker has left or was declared dead.
  bool AllWorkersFinished() const;

  // Whether worker `rank` may start its step number `step` under bounded staleness.
  // Only live workers that hold an unfinished partition pace the others (a worker
  // waiting for a partition to be released does not). During a synchronous
  // checkpoint's barrier only workers behind the others may start (to catch up).
  bool MayStartStep(int rank, int64_t step) const;
  // MayStartStep for a worker asking to start `step` (its Clock): a worker refused
  // the step after its last finished one at a checkpoint barrier is idle there.
  bool RequestStep(int rank, int64_t step);

  // Sum of finished steps over all workers (live or not): updates applied so far,
  // counted from the step a resumed job started at.
  int64_t global_step() const;

  // Continues a job from a checkpoint, before training starts: the global step
  // starts at `step` and each partition at its recorded progress. Errors:
  // FailedPrecondition once training started, InvalidArgument when the checkpoint
  // has another number of partitions.
  absl::Status RestoreProgress(int64_t step, absl::Span<const ps::PartitionProgress> partitions);

  // A restarted scheduler adopts its running job (before training starts): the
  // baseline is the newest complete checkpoint's step and partitions (step 0 and
  // empty: none), every partition unassigned; survivors' registrations are merged
  // into it (Register). When every rank is back, the global step is the largest of
  // the baseline, the survivors' last global steps and the sum of their clocks.
  // Errors as RestoreProgress.
  absl::Status AdoptJob(int64_t step, absl::Span<const ps::PartitionProgress> partitions);
  bool adopting() const { return adopting_; }

  // Rolls the whole job back to a checkpoint (a synchronous job whose server was
  // replaced): global step `step`, every worker's clock 0, partitions at the given
  // progress (all at 0 when empty) and unassigned, any running checkpoint
  // abandoned; then epoch++ and rollback_epoch = epoch. Workers are stale until they
  // read the new cluster view. InvalidArgument for a wrong partition count.
  absl::Status RollbackTo(int64_t step, absl::Span<const ps::PartitionProgress> partitions);
  // Membership epoch (starts at 1): bumped by every server replacement and rollback.
  void BumpEpoch() { ++epoch_; }
  void set_epoch(uint64_t epoch) { epoch_ = epoch; }
  uint64_t epoch() const { return epoch_; }
  // The latest epoch that began with a rollback (0: none), and its step (-1: none).
  uint64_t rollback_epoch() const { return rollback_epoch_; }
  int64_t rollback_step() const { return rollback_step_; }
  // Worker `rank` read the cluster view of the current epoch (ClusterQuery).
  void AckEpoch(int rank);
  // Next partition for worker `rank` (its own unfinished ones first, then an
  // unassigned one, e.g. from a dead worker), or nullopt when there is none for it
  // now (always nullopt for an unregistered rank and once the job is stopping or
  // over).
  std::optional<PartitionInfo> NextPartition(int rank);
  // A worker given no partition must stay in the job and ask again: some partition
  // is unfinished and the job is not stopping or over.
  bool ShouldWaitForPartition() const;
  // Progress on a partition owned by `rank`. FailedPrecondition if not its owner.
  absl::Status ReportPartition(int rank, int partition, int64_t offset, bool done);
  bool AllPartitionsDone() const;
  // FailedPrecondition, naming the partitions and the dead or departed workers, when
  // unfinished partitions have had no live worker to take them for longer than
  // heartbeat_timeout_ms while training (or paused); OK otherwise. Call it
  // periodically: it keeps the time since the partitions were stranded.
  absl::Status CheckStranded(int64_t now_ms);

  // True when a checkpoint is due at `now_ms` (by steps or time) and none is running;
  // the caller then calls CheckpointStarted, waits for CheckpointBarrierReached,
  // runs it and calls CheckpointFinished (or CheckpointAbandoned).
  bool CheckpointDue(int64_t now_ms) const;
  // A synchronous job (staleness 0) enters the checkpoint barrier: no worker starts
  // a step beyond BarrierSteps() until all have finished that number.
  void CheckpointStarted();
  // Every live worker pacing the job has reported the same finished count and was
  // refused the next step since the barrier began, so none is inside a step (always
  // true for an asynchronous job): the parameters hold exactly those steps.
  bool CheckpointBarrierReached() const;
  void CheckpointFinished(int64_t step, int64_t now_ms);
  void CheckpointAbandoned();
  bool checkpoint_running() const { return checkpoint_running_; }
  int64_t last_checkpoint_step() const { return last_checkpoint_step_; }

  // Control: pause/resume training, finish or fail the job.
  absl::Status Pause();
  absl::Status Resume();
  // Moves a registering, training or paused job to kStopping (no-op otherwise).
  void BeginStop();
  void SetPhase(Phase phase) { phase_ = phase; }
  Phase phase() const { return phase_; }

  const std::vector<NodeInfo>& servers() const { return servers_; }
  const std::vector<NodeInfo>& workers() const { return workers_; }
  const std::vector<PartitionInfo>& partitions() const { return partitions_; }
  const JobStateOptions& options() const { return options_; }

 private:
  std::vector<NodeInfo>* NodesOf(Role role);
  const NodeInfo* FindNode(Role role, int rank) const;
  int64_t SlowestLiveWorkerSteps() const;
  int64_t FastestLiveWorkerSteps() const;
  // The clock a checkpoint barrier holds the workers at: the fastest one's, rounded
  // up to a multiple of checkpoint_clock_multiple.
  int64_t BarrierSteps() const;
  // Live, unfinished workers that hold an unfinished partition (they pace the job).
  std::vector<bool> PacingWorkers() const;
  bool Stale(const NodeInfo& worker) const { return worker.seen_epoch < rollback_epoch_; }
  // InvalidArgument for a registration's partition reports out of range (a partition
  // id, an offset outside [0, kMaxReportedCount]) or any from a server.
  absl::Status CheckPartitionReports(Role role, int rank,
                                     const std::vector<ps::PartitionProgress>& partitions) const;
  // Merges a surviving worker's partitions (checked) into an adopted job's.
  void MergePartitions(int rank, const std::vector<ps::PartitionProgress>& partitions);
  // Registering -> training once every node is alive.
  void MaybeStartTraining(int64_t now_ms);
  // Registering, training, paused or recovering: not stopping, done or failed.
  bool Running() const;
  // Unassigns worker `rank`'s unfinished partitions; `why` goes into the log line.
  void ReleasePartitions(int rank, const char* why);

  const JobStateOptions options_;
  Phase phase_ = Phase::kRegistering;
  std::vector<NodeInfo> servers_;
  std::vector<NodeInfo> workers_;
  std::vector<PartitionInfo> partitions_;
  int64_t base_step_ = 0;  // a resumed job's starting global step
  uint64_t job_id_ = 0;
  uint64_t epoch_ = 1;
  uint64_t rollback_epoch_ = 0;
  int64_t rollback_step_ = -1;
  bool adopting_ = false;            // AdoptJob until training starts
  int64_t adopted_global_step_ = 0;  // the baseline, raised by survivors' reports
  bool checkpoint_running_ = false;
  bool barrier_ = false;  // a synchronous checkpoint waits for the workers to align
  int64_t last_checkpoint_step_ = 0;
  int64_t last_checkpoint_ms_ = -1;  // -1 until training starts
  int64_t stranded_since_ms_ = -1;   // -1 while every unfinished partition has a taker
};

}  // namespace towerps::scheduler

#endif  // TOWERPS_SCHEDULER_JOB_STATE_H_
