// Embedded mode: the whole model in one process. An in-process ParameterServer
// (rank 0 of 1) holds the sparse tables and the dense parameters; `threads` training
// threads each run a StepRunner over their own record partition of the training
// split against it (asynchronous data parallelism, like a one-host cluster), with
// the warmup + cosine schedule driven by the shared global step. With one thread
// and a fixed seed a run is deterministic. At the end it writes a checkpoint in the
// cluster's format (one server), so export and evaluate read either.
//
// Threads: "train-<t>" per training thread, joined by Run(). Thread-compatible
// object (Run once), except Stop(), which any thread may call.
#ifndef TOWERPS_WORKER_EMBEDDED_TRAINER_H_
#define TOWERPS_WORKER_EMBEDDED_TRAINER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/metrics.h"
#include "ps/server.h"
#include "worker/item_catalog.h"
#include "worker/model_config.h"
#include "worker/negative_miner.h"

namespace towerps::worker {

struct TrainProgress {
  int64_t step = 0;         // global steps done
  int64_t total_steps = 0;  // planned
  double loss = 0;          // mean loss of the steps since the last report
  double examples_per_s = 0;
  double lr_scale = 0;
  double elapsed_s = 0;
};

struct EmbeddedTrainerOptions {
  // Prepared dataset directory (towerps prepare).
  std::string dataset_dir;
  // Run directory: checkpoint/ and losses are written under it. Required.
  std::string run_dir;
  // Training threads; >= 1.
  int threads = 1;
  // Stop after this many global steps (0 = the config's epochs).
  int64_t max_steps = 0;
  // Shuffle the training split (seeded by the config's seed).
  bool shuffle = true;
  // Write "<step>\t<loss>" per step to <run_dir>/losses.tsv (for comparisons).
  bool log_losses = false;
  // Progress callback period, milliseconds.
  int64_t progress_interval_ms = 1000;
  std::function<void(const TrainProgress&)> on_progress;

  absl::Status Validate() const;
};

struct TrainResult {
  int64_t steps = 0;
  int64_t examples = 0;
  double seconds = 0;
  double final_loss = 0;  // mean over the last 10% of steps
  std::string checkpoint_dir;
  bool stopped = false;  // ended early by Stop()
};

class EmbeddedTrainer {
 public:
  // Loads the dataset meta and item catalog and builds the server. metrics may be null.
  static absl::StatusOr<std::unique_ptr<EmbeddedTrainer>> Create(
      const EmbeddedTrainerOptions& options, const ModelConfig& config, MetricsRegistry* metrics);

  // Trains, then writes <run_dir>/checkpoint/step-N/ with its MANIFEST.
  absl::StatusOr<TrainResult> Run();
  // Makes Run end early (SIGTERM): each thread finishes its step, then Run writes
  // the checkpoint of the steps done and returns OK (result.stopped set).
  // Thread-safe, idempotent, non-blocking.
  void Stop() { stop_requested_ = true; }

  const BoundModel& model() const { return model_; }
  ps::ParameterServer* server() { return server_.get(); }

 private:
  EmbeddedTrainer(const EmbeddedTrainerOptions& options, MetricsRegistry* metrics)
      : options_(options), metrics_(metrics) {}

  const EmbeddedTrainerOptions options_;
  MetricsRegistry* const metrics_;
  BoundModel model_;
  int64_t train_examples_ = 0;
  std::unique_ptr<ItemCatalog> catalog_;
  std::unique_ptr<UserPositives> positives_;  // with mining only
  std::unique_ptr<ps::ParameterServer> server_;
  std::atomic<bool> stop_requested_{false};
};

}  // namespace towerps::worker

#endif  // TOWERPS_WORKER_EMBEDDED_TRAINER_H_
