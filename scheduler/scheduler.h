// The scheduler process's service: JobState behind an RPC endpoint, plus a monitor
// thread that detects failures, replaces dead parameter servers (recovery.cc), runs
// coordinated checkpoints and finishes the job. With a job file it records the job
// so that a restarted scheduler (`recover`) adopts it (job_file.h).
//
// Threads: the RpcServer's io and handler threads call Handle (under mu_); thread
// "sched-monitor" wakes every monitor_interval_ms. Stop() is idempotent and joins.
// Thread-safe.
#ifndef TOWERPS_SCHEDULER_SCHEDULER_H_
#define TOWERPS_SCHEDULER_SCHEDULER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/cancellation.h"
#include "common/clock.h"
#include "common/event_log.h"
#include "common/metrics.h"
#include "models/lr_schedule.h"
#include "net/transport.h"
#include "ps/client.h"
#include "scheduler/job_file.h"
#include "scheduler/job_progress.h"
#include "scheduler/job_state.h"

namespace towerps::scheduler {

struct SchedulerOptions {
  JobStateOptions job;
  // Virtual shards of the key space (ps/shard_map.h); >= num_servers.
  uint32_t num_virtual_shards = 4096;
  // The learning-rate schedule as a multiplier: base_lr should be 1 (workers scale
  // each optimizer's own base rate by it).
  models::LrScheduleOptions lr_scale;
  // Checkpoints go to <checkpoint_root>/step-N/; empty disables them.
  std::string checkpoint_root;
  // Every this many checkpoints one is full; those between are incremental on the
  // previous one (only the rows changed since; ps/checkpoint.h). <= 1: all full.
  int full_checkpoint_every = 10;
  // Retention: after each full checkpoint, the checkpoints older than the newest this
  // many complete chains (full + its increments) are deleted (ps::PruneCheckpoints;
  // only a new full checkpoint can make an older chain prunable, and each prune
  // verifies the kept chains' files). A failed prune is logged, never fails the job.
  // 0 = keep everything; >= 0.
  int keep_full_checkpoints = 2;
  // Continue a job from this checkpoint directory (verified first; it must be
  // <checkpoint_root>/step-N): the job id, the global step and the data partitions'
  // progress come from its MANIFEST, and every server loads its shards from step-N
  // under its own root before serving (told the step at registration). Empty: a fresh
  // job, with a new random job id.
  std::string resume_from;
  // Floats of the model's dense array (recorded in the checkpoint MANIFEST).
  uint64_t dense_params = 0;
  // A dead parameter server's replacement is waited for this long (phase
  // recovering) before the job fails, milliseconds; > 0. Also bounds each restore
  // order (ps_rpc.timeout_ms otherwise).
  int64_t recovery_timeout_ms = 120000;
  // <run_dir>/scheduler.job: written at the start (state running, the bound endpoint)
  // and at the end (done, failed). Empty: none.
  std::string job_file;
  // With a job file whose state is running: adopt that job (its id, its endpoint,
  // bound again; the newest complete checkpoint as the baseline) and wait for its
  // nodes to re-register. Otherwise a fresh job (or resume_from).
  bool recover = false;
  // <run_dir>/events.jsonl: the job's events, one JSON line each (job_start, phase,
  // node_registered, node_dead, checkpoint, recovery, job_end; docs/metrics.md).
  // Empty: none. A failed append is logged and the job goes on.
  std::string events_path;
  // What the job_start event records: the model config and the dataset (paths, as
  // given), and the global steps the job plans (the LR schedule's length; also the
  // status's ETA and the gauge towerps_scheduler_planned_steps; 0 = unknown); >= 0.
  std::string config_path;
  std::string dataset_path;
  int64_t planned_steps = 0;
  // Failure detection and checkpoint polling period, milliseconds; > 0.
  int64_t monitor_interval_ms = 200;
  // A stop (RequestStop, `ctl stop`) waits up to this long for the workers to report
  // their progress and leave before the final checkpoint, milliseconds; > 0.
  int64_t stop_timeout_ms = 10000;
  // Bind endpoint and handler threads of the control/membership endpoint.
  net::RpcServerOptions rpc;
  // Deadlines for the scheduler's own requests to parameter servers (checkpoints).
  // With CURVE (rpc.curve and ps_rpc.curve set), ps_rpc.curve is the scheduler's pair
  // and server_public_keys[r] is ps/<r>'s public key (size num_servers).
  net::RpcClientOptions ps_rpc;
  std::vector<std::string> server_public_keys;

  absl::Status Validate() const;
};

// OK when `peer` may send `request` to the scheduler: with CURVE on, Register,
// Heartbeat and ClusterQuery only for the peer's own role and rank ("operator" may
// also query), Clock and Partition only for the worker's own rank, Control commands
// other than status only from "operator". PermissionDenied otherwise.
absl::Status AuthorizeSchedulerRequest(const net::Peer& peer,
                                       const net::wire::Envelope::Reader& request);

class Scheduler {
 public:
  // Binds the endpoint and starts the threads. ctx, metrics and clock are borrowed.
  static absl::StatusOr<std::unique_ptr<Scheduler>> Start(const net::ZmqContext* ctx,
                                                          const SchedulerOptions& options,
                                                          MetricsRegistry* metrics,
                                                          const Clock* clock);
  ~Scheduler();

  const std::string& endpoint() const { return rpc_->endpoint(); }
  uint64_t job_id() const { return job_id_; }
  // Blocks until the job is done (every partition done, every worker left and the
  // final checkpoint written; or stopped by RequestStop) or failed. Returns OK, or
  // the failure.
  absl::Status WaitUntilDone();
  // Ends the job gracefully (SIGTERM, `ctl stop`): the phase becomes stopping, the
  // workers report their progress and leave (up to stop_timeout_ms), the final
  // checkpoint is written (with a checkpoint_root) and the job is done; servers and
  // workers see it and exit. Before training started the job is done at once.
  // `why` is logged and sent to the nodes. Thread-safe, non-blocking; later calls
  // and calls after the job ended are ignored.
  void RequestStop(const std::string& why);
  // Stops the threads (not the job: see RequestStop). Idempotent.
  void Stop();

  // The RPC handler (public for tests). With CURVE (`peer` authenticated) a node
  // speaks only for its own role and rank and only "operator" controls the job
  // (AuthorizeSchedulerRequest); refusals are PermissionDenied.
  absl::StatusOr<std::string> Handle(const net::Peer& peer,
                                     const net::wire::Envelope::Reader& request);
  // The job's status as one JSON object (what `towerps ctl status` prints).
  std::string StatusJson();

 private:
  Scheduler(const SchedulerOptions& options, const net::ZmqContext* ctx, MetricsRegistry* metrics,
            const Clock* clock, models::LrSchedule lr);
  void MonitorLoop();
  // What a checkpoint wrote (for its event): set as far as RunCheckpoint got.
  struct CheckpointOutcome {
    std::string dir;
    int64_t bytes = 0;  // sum of the files' sizes in the MANIFEST
    bool incremental = false;
  };
  // Saves every server's shards and the MANIFEST. Called by the monitor thread only.
  absl::Status RunCheckpoint(int64_t step, CheckpointOutcome* outcome);
  std::string StatusJsonLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The cluster view for the node (role, rank) asking.
  void FillCluster(net::wire::RegisterReply::Builder reply, Role role, int rank)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status HandleRegister(net::wire::Register::Reader r, int64_t now,
                              net::wire::Envelope::Builder reply)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes the job file (when there is one) with `state`; errors are logged.
  void WriteJobFileLocked(const char* state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  float LrScaleLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishLocked(Phase phase, absl::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RequestStopLocked(const std::string& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Why the job failed or is stopping ("" otherwise): sent with the phase.
  std::string PhaseReasonLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The monitor's decision for one tick: run a periodic or the final checkpoint.
  // Or restore servers and end a recovery.
  struct Tick {
    bool checkpoint = false;
    bool final_checkpoint = false;
    int64_t step = 0;
    bool recover = false;
    std::vector<int> replaced;           // the servers being replaced
    std::vector<int> restore;            // the servers to restore
    std::vector<std::string> endpoints;  // by server rank
  };
  Tick MonitorTickLocked(int64_t now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // "continue the job from its last checkpoint (<dir>) with --resume".
  std::string ResumeHintLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Recovery (recovery.cc). A server rank was found dead or replaced: training,
  // paused or recovering jobs wait for its replacement; others fail as before.
  void ServerLostLocked(int rank, int64_t now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // While recovering: fails the job past recovery_timeout_ms, or fills `tick` once
  // every server is alive again.
  void RecoveryTickLocked(int64_t now, Tick* tick) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The monitor thread, outside mu_: restores the servers, then rolls back (sync) or
  // counts the lost steps (async), bumps the epoch and resumes training.
  void RunRecovery(const Tick& tick);
  // A restarted scheduler adopts the job of a running job file (Start).
  absl::Status AdoptJob(const JobFile& file);

  // Events (events.cc): each builds its line and appends it to events_ (no-op
  // without one). The phase event is written when the phase differs from the last one
  // written; callers call LogPhaseChangeLocked after anything that may change it.
  void LogJobStartLocked(bool recovered) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void LogPhaseChangeLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void LogNodeRegistered(Role role, const Registered& registered, const std::string& endpoint);
  void LogNodeDead(const NodeInfo& node, const char* reason);
  void LogCheckpoint(int64_t step, const CheckpointOutcome& outcome, const absl::Status& status,
                     double duration_ms);
  // rank -1: the whole job rolled back (a synchronous job); else one replaced server.
  void LogRecoveryLocked(const std::vector<int>& ranks, int64_t lost_steps, double seconds, bool ok)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void LogJobEndLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void LogEvent(absl::string_view event, const JsonObject& fields);

  // Constant after construction.
  const SchedulerOptions options_;
  const net::ZmqContext* const ctx_;
  const Clock* const clock_;
  const models::LrSchedule lr_;
  std::string shard_owners_;   // ShardMap::ToWire of the balanced map
  uint64_t job_id_ = 0;        // checkpoint files are bound to it (set in Start)
  int64_t restore_step_ = -1;  // the resumed checkpoint's step, or -1 (set in Start)
  std::unique_ptr<EventLog> events_;  // null without options.events_path (set in Start)
  int64_t start_us_ = 0;              // clock_->NowMicros() at Start, for job_end
  Gauge* global_step_metric_ = nullptr;
  Gauge* lr_scale_metric_ = nullptr;
  Gauge* live_workers_metric_ = nullptr;
  Counter* dead_nodes_metric_ = nullptr;
  Counter* checkpoints_metric_ = nullptr;
  Counter* recoveries_metric_ = nullptr;
  Counter* lost_steps_metric_ = nullptr;
  Histogram* recovery_seconds_metric_ = nullptr;
  Gauge* planned_steps_metric_ = nullptr;
  Gauge* clock_spread_metric_ = nullptr;

  absl::Mutex mu_;
  JobState job_ ABSL_GUARDED_BY(mu_);
  bool checkpoint_requested_ ABSL_GUARDED_BY(mu_) = false;
  std::string stop_reason_ ABSL_GUARDED_BY(mu_);        // set by RequestStop
  int64_t stop_deadline_ms_ ABSL_GUARDED_BY(mu_) = -1;  // while stopping
  absl::Status final_status_ ABSL_GUARDED_BY(mu_);
  std::string last_checkpoint_dir_ ABSL_GUARDED_BY(mu_);
  // The status's progress figures: workers' losses and examples, rates; when this
  // scheduler started and the job ended (-1: not yet), and the last checkpoint
  // written (-1: none), in clock_ milliseconds.
  JobProgress progress_ ABSL_GUARDED_BY(mu_);
  int64_t start_ms_ = 0;
  int64_t end_ms_ ABSL_GUARDED_BY(mu_) = -1;
  int64_t last_checkpoint_step_ ABSL_GUARDED_BY(mu_) = -1;
  int64_t last_checkpoint_ms_ ABSL_GUARDED_BY(mu_) = -1;
  // Recovery: since when (-1: not recovering) and which server ranks are replaced.
  int64_t recovery_started_ms_ ABSL_GUARDED_BY(mu_) = -1;
  std::vector<int> replaced_servers_ ABSL_GUARDED_BY(mu_);
  uint64_t job_file_epoch_ ABSL_GUARDED_BY(mu_) = 0;  // the epoch last written
  std::optional<Phase> logged_phase_ ABSL_GUARDED_BY(mu_);  // the last phase event's

  // Only the monitor thread; reset when server endpoints change (a replacement).
  std::unique_ptr<ps::PsClient> ps_client_;
  // ps_client_'s cancellation: a server lost while a checkpoint waits on it ends the
  // wait at once. Replaced (with ps_client_) by the monitor thread under mu_ after a
  // recovery; read by the monitor without the lock, by others under it.
  std::unique_ptr<Cancellation> ps_cancel_ = std::make_unique<Cancellation>();
  // Servers new in an adopted job: restored by order once every node is back.
  std::vector<int> adopted_new_servers_ ABSL_GUARDED_BY(mu_);

  absl::Notification done_;
  absl::Notification stop_;
  std::unique_ptr<net::RpcServer> rpc_;
  std::thread monitor_;
  std::atomic<bool> stopped_{false};
};

}  // namespace towerps::scheduler

#endif  // TOWERPS_SCHEDULER_SCHEDULER_H_
