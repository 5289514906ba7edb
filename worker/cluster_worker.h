// A distributed training worker: registers with the scheduler, waits for the
// cluster, connects to every parameter server, and trains the data partitions the
// scheduler hands it, pacing each step by the scheduler's clock (bounded
// staleness) and taking the learning-rate scale from it. The step itself is
// StepRunner, the same code embedded mode runs, so a one-worker synchronous
// cluster reproduces embedded mode's losses.
//
// Thread-compatible; Run() blocks on the calling thread.
#ifndef TOWERPS_WORKER_CLUSTER_WORKER_H_
#define TOWERPS_WORKER_CLUSTER_WORKER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
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
  // Deadlines of requests to the scheduler and the servers (curve is set from keys).
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
  // Trains until no partition is left (or the job is stopped). Returns this
  // worker's steps and examples.
  absl::StatusOr<TrainResult> Run();

 private:
  ClusterWorker(const net::ZmqContext* ctx, const ClusterWorkerOptions& options,
                MetricsRegistry* metrics)
      : ctx_(ctx), options_(options), metrics_(metrics) {}

  const net::ZmqContext* const ctx_;
  const ClusterWorkerOptions options_;
  MetricsRegistry* const metrics_;
  BoundModel model_;
  std::unique_ptr<ItemCatalog> catalog_;
};

}  // namespace towerps::worker

#endif  // TOWERPS_WORKER_CLUSTER_WORKER_H_
