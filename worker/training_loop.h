// The training loop both modes run (embedded `towerps train` threads and the
// distributed `towerps worker`): read data partitions of the training split, fill
// batches, run StepRunner steps, log losses and record metrics. What differs between
// the modes is the pacing, behind StepPacer: which partition to read next, whether a
// step may start (and at which global step and LR scale), and where progress goes.
//
// A step's lifecycle: its batch is filled from the partition, the pacer grants it
// (MayStart), its rows are pulled (Prepare, on the prefetch thread when pipelining),
// it runs, and the pacer hears of it (StepDone). A parameter-server request failing
// with Unavailable or DeadlineExceeded is handed to the pacer (AwaitRecovery); when
// the pacer has reconnected, the same batch runs again.
//
// Threads: TrainingLoop::Run on the caller's thread; with a prefetch source it starts
// "worker-prefetch" and joins it before returning. LossLog is thread-safe; the rest
// is thread-compatible.
#ifndef TOWERPS_WORKER_TRAINING_LOOP_H_
#define TOWERPS_WORKER_TRAINING_LOOP_H_

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/metrics.h"
#include "ps/param_source.h"
#include "worker/step_runner.h"

namespace towerps::worker {

// Where the loop is: the partition being read (-1 between partitions), the examples
// consumed in it by finished steps, and the loop's clock (steps finished, counted
// from TrainingLoopOptions::first_finished).
struct LoopProgress {
  int partition = -1;
  int64_t offset = 0;
  int64_t finished = 0;
};

// The pacer's answer to "may the next step start?".
struct StepGrant {
  enum class Kind {
    kRun,        // run it at `step` with `lr_scale`
    kStop,       // leave: report progress and end
    kReconnect,  // the cluster changed: call Reconnect (prefetching idle), then ask again
    kRestart,    // the job rolled back: drop the partition and the dense gradients,
                 // set the clock to `finished`, ask for a partition again
  };
  Kind kind = Kind::kStop;
  int64_t step = 0;
  float lr_scale = 1.0f;
  int64_t finished = 0;  // kRestart
};

// The pacer's answer to "what next?" between partitions. kRun: read `partition`
// from example `offset` (partition -1: no data is left, the loop ends); kStop,
// kReconnect and kRestart (with `finished`) as for a step.
struct PartitionStart {
  StepGrant::Kind kind = StepGrant::Kind::kRun;
  int partition = -1;
  int64_t offset = 0;
  int64_t finished = 0;
};

// The pacing of one loop. Called only from the loop's thread.
class StepPacer {
 public:
  virtual ~StepPacer() = default;
  // The partition to read after `progress` (partition -1: none held; `done`: the
  // held one is finished at progress.offset, reported by this call). May block
  // (waiting for a partition to be released).
  virtual absl::StatusOr<PartitionStart> NextPartition(const LoopProgress& progress,
                                                       bool done) = 0;
  // Before each step, its batch filled. May block (clock, pause, recovery).
  virtual absl::StatusOr<StepGrant> MayStart(const LoopProgress& progress) = 0;
  // After each finished step (progress already counts it; `stats` are the step's).
  virtual absl::Status StepDone(const LoopProgress& progress, const StepStats& stats) = 0;
  // A parameter-server request failed with `status` (Unavailable, DeadlineExceeded):
  // OK once the loop should Reconnect and retry the batch; else the loop ends with it.
  virtual absl::Status AwaitRecovery(const absl::Status& status) { return status; }
  // Rebuilds the parameter sources the runner reads (the prefetch thread is idle).
  virtual absl::Status Reconnect(StepRunner* runner) {
    (void)runner;
    return absl::UnimplementedError("this pacer has nothing to reconnect");
  }
  // The loop ends (dense gradients flushed): report the last progress.
  virtual absl::Status Leave(const LoopProgress& progress, bool stopped) = 0;
};

// "<step>\t<loss>" lines, one per step. Thread-safe.
class LossLog {
 public:
  // append: keep what is there (a replaced worker continues its predecessor's log).
  static absl::StatusOr<std::unique_ptr<LossLog>> Open(const std::string& path, bool append);
  ~LossLog();
  void Write(int64_t step, double loss);

 private:
  explicit LossLog(FILE* file) : file_(file) {}
  absl::Mutex mu_;
  FILE* const file_ ABSL_PT_GUARDED_BY(mu_);
};

// The per-step metric handles of a loop (each may be null).
struct LoopMetrics {
  Gauge* loss = nullptr;
  Gauge* step = nullptr;
  Gauge* lr_scale = nullptr;
  Histogram* pull_us = nullptr;
  Histogram* push_us = nullptr;
  Counter* examples = nullptr;  // examples of the finished steps
};

struct TrainingLoopOptions {
  // The training split of this prepared dataset, read in num_partitions record
  // partitions (shuffled by seed when shuffle), `epochs` passes.
  std::string dataset_dir;
  int num_partitions = 1;
  bool shuffle = true;
  uint64_t seed = 0;
  int epochs = 1;
  int batch_size = 2;
  // The clock the loop starts at (a replaced worker continues its predecessor's).
  int64_t first_finished = 0;
  // For log lines ("worker/3", "train-0").
  std::string name;
  // Pipelining: when set, "worker-prefetch" pulls the next batch's rows through this
  // source (borrowed) while the current step computes.
  ps::ParamSource* prefetch_params = nullptr;
  // Borrowed, may be null.
  LossLog* loss_log = nullptr;
  LoopMetrics metrics;
  // Called after each step (e.g. embedded mode's loss window).
  std::function<void(int64_t step, const StepStats& stats)> on_step;

  absl::Status Validate() const;
};

struct LoopResult {
  int64_t steps = 0;  // steps run by this loop
  int64_t examples = 0;
  bool stopped = false;  // ended by kStop or a stopped NextPartition
  int64_t last_step = 0;
  float last_lr = 1.0f;
};

// Runs the loop until the pacer has no partition left or says stop; flushes the
// runner's dense gradients and calls Leave. runner (with its own ParamSource) and
// pacer are borrowed. Errors: the reader's, the runner's or the pacer's.
absl::StatusOr<LoopResult> RunTrainingLoop(const TrainingLoopOptions& options,
                                           const BoundModel& model, StepRunner* runner,
                                           StepPacer* pacer);

}  // namespace towerps::worker

#endif  // TOWERPS_WORKER_TRAINING_LOOP_H_
