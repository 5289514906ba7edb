// A distributed training worker: registers with the scheduler, waits for the
// cluster, connects to every parameter server, and trains the data partitions the
// scheduler hands it, pacing each step by the scheduler's clock (bounded
// staleness) and taking the learning-rate scale from it. The loop is
// RunTrainingLoop and the step StepRunner, the same code embedded mode runs, so a
// one-worker synchronous cluster reproduces embedded mode's losses.
//
// Lifecycle: a worker given no partition while others still hold unfinished ones
// stays in the job, asking again every partition_poll_ms, so it can take over the
// partitions of a worker declared dead; it leaves only when no data is left. On
// Stop() or when the scheduler moves the job to stopping, it finishes its step,
// reports its partition's exact progress, flushes its dense gradients and leaves
// (Run returns OK). Recovery (ClusterPacer, docs/distributed.md): a replaced worker
// continues its rank's clock and appends to its loss log; paused and recovering jobs
// are waited for; a new membership epoch rebuilds the server clients (a rollback
// also restarts the worker's progress at the view's); a dead server is waited for
// until its replacement is in; scheduler calls are retried while the watch lasts,
// and a restarted scheduler is re-registered with (SchedulerWatchOptions::rejoin).
// When the job fails or the scheduler stays silent (net::SchedulerWatch), every
// pending request gives up and Run returns the cause.
//
// Threads: Run() on the caller's thread; "worker-prefetch" (asynchronous jobs) and
// the watch's "sched-watch", both joined before Run returns. Stop() is thread-safe;
// everything else is thread-compatible.
#ifndef TOWERPS_WORKER_CLUSTER_WORKER_H_
#define TOWERPS_WORKER_CLUSTER_WORKER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "common/metrics.h"
#include "net/curve_keys.h"
#include "net/transport.h"
#include "worker/embedded_trainer.h"
#include "worker/model_config.h"

namespace towerps::worker {

struct ClusterWorkerOptions {
  std::string scheduler_endpoint;
  std::string dataset_dir;
  // Where losses-worker-<rank>.tsv goes when log_losses.
  std::string run_dir;
  int rank = -1;
  bool shuffle = true;
  bool log_losses = false;
  // Pull the next batch's rows while computing the current one (unless the job is
  // synchronous). Adds one step of staleness to those rows.
  bool prefetch = true;
  // How long to wait for every node to register.
  int64_t cluster_timeout_ms = 120000;
  // Heartbeats to the scheduler, and how long it may stay silent before the
  // worker gives up (> heartbeat_interval_ms), milliseconds: the time a restarted
  // scheduler has to come back.
  int64_t heartbeat_interval_ms = 1000;
  int64_t scheduler_timeout_ms = 60000;
  // While waiting for a partition to be released: period of asking, milliseconds.
  int64_t partition_poll_ms = 200;
  // Deadlines of requests to the scheduler and the servers (curve is set from keys).
  // A request to the scheduler waits at most 2 heartbeat intervals an attempt (it is
  // answered from memory; a restarted scheduler gets the resend that soon).
  net::RpcClientOptions rpc;
  // The job's CURVE keys as worker/<rank> (rank must then be set); default: insecure.
  net::JobKeys keys;

  absl::Status Validate() const;
};

class ClusterWorker {
 public:
  // ctx and metrics (may be null) are borrowed.
  static absl::StatusOr<std::unique_ptr<ClusterWorker>> Create(const net::ZmqContext* ctx,
                                                               const ClusterWorkerOptions& options,
                                                               const ModelConfig& config,
                                                               MetricsRegistry* metrics);
  // Trains until no partition is left or the job (or this worker) is stopped.
  // Returns this worker's steps and examples; Aborted with the cause when the job
  // failed or the scheduler is gone.
  absl::StatusOr<TrainResult> Run();
  // Asks Run to finish its step, report its progress and return (SIGTERM).
  // Thread-safe, idempotent, non-blocking.
  void Stop() {
    if (!stop_requested_.exchange(true)) stop_.Notify();
  }

 private:
  ClusterWorker(const net::ZmqContext* ctx, const ClusterWorkerOptions& options,
                MetricsRegistry* metrics)
      : ctx_(ctx), options_(options), metrics_(metrics) {}

  const net::ZmqContext* const ctx_;
  const ClusterWorkerOptions options_;
  MetricsRegistry* const metrics_;
  BoundModel model_;
  std::unique_ptr<ItemCatalog> catalog_;
  std::unique_ptr<UserPositives> positives_;  // with mining only
  std::atomic<bool> stop_requested_{false};
  absl::Notification stop_;
};

}  // namespace towerps::worker

#endif  // TOWERPS_WORKER_CLUSTER_WORKER_H_
