// The pacing of a distributed worker (StepPacer over the scheduler) and the parts of
// its recovery (docs/distributed.md, "Recovery"):
//   - partitions come from the scheduler's grants; progress goes with every clock
//     exchange (every step in a synchronous job, every kAsyncClockEvery steps in an
//     asynchronous one) and a partition report every kReportEverySteps steps;
//   - a step starts when the clock says may_start; paused and recovering jobs wait
//     (polled every 50 ms), they never end the worker;
//   - a new membership epoch makes the worker re-query the cluster, rebuild its
//     parameter-server clients and re-run InitDense (assign = rank 0); a rollback
//     (view.rollback_epoch past the epoch it knew) also drops its partition, its
//     unreported progress and its dense gradients and resets its clock;
//   - a parameter-server outage waits for the epoch to change (or the watch to end);
//     the clients of an epoch carry the watch's EpochCancellation, so a request in
//     flight to a dead server is abandoned (Unavailable) as soon as the watch sees
//     the replacement's epoch, not after the request timeout;
//   - scheduler calls failing with Unavailable, DeadlineExceeded or NotFound (a
//     restarted scheduler) are retried until the watch ends;
//   - every clock carries net::ClockStats: the mean loss of the steps since the
//     previous clock and the examples this process finished (`ctl status`);
//   - the loop's state is published in a RejoinState, which the watch's rejoin
//     callback re-registers with when a restarted scheduler does not know the worker.
//
// Threads: ClusterPacer is driven by the loop's thread (its prefetch source by the
// prefetch thread); RejoinState is thread-safe.
#ifndef TOWERPS_WORKER_CLUSTER_PACER_H_
#define TOWERPS_WORKER_CLUSTER_PACER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/cancellation.h"
#include "common/metrics.h"
#include "net/curve_keys.h"
#include "net/membership_client.h"
#include "net/scheduler_watch.h"
#include "ps/client.h"
#include "worker/training_loop.h"

namespace towerps::worker {

// Examples between two partition reports of an asynchronous worker (the hand-over point).
inline constexpr int64_t kReportEverySteps = 20;
// Steps between clock exchanges in an asynchronous job: a pause, stop, epoch or
// LR-scale change reaches the worker within this many steps.
inline constexpr int64_t kAsyncClockEvery = 4;
// Poll period of a worker waiting for a paused or recovering job, or for an outage.
inline constexpr int64_t kRecoveryPollMs = 50;

// What a worker tells a restarted scheduler (net::Rejoin): written by the pacer,
// read by the watch thread. Thread-safe.
class RejoinState {
 public:
  void Publish(net::Rejoin rejoin) {
    absl::MutexLock lock(&mu_);
    rejoin_ = std::move(rejoin);
  }
  net::Rejoin Get() const {
    absl::MutexLock lock(&mu_);
    return rejoin_;
  }

 private:
  mutable absl::Mutex mu_;
  net::Rejoin rejoin_ ABSL_GUARDED_BY(mu_);
};

// A ParamSource forwarding to one that can be replaced (the clients of a new
// membership epoch), with the cancellation its clients carry (kept while they live).
// Reset only while nothing else uses it.
class SwappableParams final : public ps::ParamSource {
 public:
  void Reset(std::unique_ptr<ps::ParamSource> target, std::shared_ptr<const Cancellation> cancel) {
    target_ = std::move(target);  // the old clients go before their cancellation
    cancel_ = std::move(cancel);
  }
  absl::Status Pull(absl::Span<const ps::SparseSlice> slices, int64_t step, bool create) override {
    return target_->Pull(slices, step, create);
  }
  absl::Status Update(const ps::StepUpdate& update, int64_t step) override {
    return target_->Update(update, step);
  }
  absl::StatusOr<int64_t> PullDense(absl::Span<float> params) override {
    return target_->PullDense(params);
  }
  absl::Status AssignDense(absl::Span<const float> values) override {
    return target_->AssignDense(values);
  }
  absl::Status Flush() override { return target_->Flush(); }

 private:
  std::unique_ptr<ps::ParamSource> target_;
  std::shared_ptr<const Cancellation> cancel_;
};

struct ClusterPacerOptions {
  int rank = -1;
  std::string name;  // "worker/<rank>"
  // Template of the parameter-server clients (rpc, client_id < 2^32, dense_params,
  // ...); endpoints and server keys come from each view, the id's high bits are
  // drawn per client set, rpc.cancel is the watch's EpochCancellation of the view.
  ps::PsClientOptions client;
  net::JobKeys keys;
  // A second client set for the prefetch thread (asynchronous jobs).
  bool prefetch = false;
  // While waiting for a partition to be released: period of asking, milliseconds.
  int64_t partition_poll_ms = 200;
  // How long InitDense may wait for worker 0's dense values, milliseconds.
  int64_t init_timeout_ms = 120000;
  Histogram* staleness_wait_us = nullptr;  // may be null
};

class ClusterPacer final : public StepPacer {
 public:
  // `view`: the formed cluster; `finished`: the worker's clock to start from. The
  // scheduler client (whose rpc carries the watch's cancellation) is owned; ctx,
  // watch, stop and rejoin are borrowed.
  static absl::StatusOr<std::unique_ptr<ClusterPacer>> Create(
      const net::ZmqContext* ctx, const ClusterPacerOptions& options, const net::ClusterView& view,
      int64_t finished, std::unique_ptr<net::MembershipClient> scheduler,
      const net::SchedulerWatch* watch, const absl::Notification* stop, RejoinState* rejoin);

  // The sources the runner (and the prefetch thread: null unless prefetching) use.
  ps::ParamSource* params() { return &params_; }
  ps::ParamSource* prefetch_params() { return options_.prefetch ? &prefetch_params_ : nullptr; }
  // The first InitDense (rank 0 assigns; the others wait for the values).
  absl::Status InitDense(StepRunner* runner);

  absl::StatusOr<PartitionStart> NextPartition(const LoopProgress& progress, bool done) override;
  absl::StatusOr<StepGrant> MayStart(const LoopProgress& progress) override;
  absl::Status StepDone(const LoopProgress& progress, const StepStats& stats) override;
  absl::Status AwaitRecovery(const absl::Status& status) override;
  absl::Status Reconnect(StepRunner* runner) override;
  absl::Status Leave(const LoopProgress& progress, bool stopped) override;

  // The scheduler's last word (for the result's log line).
  int num_workers() const { return num_workers_; }

 private:
  ClusterPacer(const net::ZmqContext* ctx, const ClusterPacerOptions& options,
               std::unique_ptr<net::MembershipClient> scheduler, const net::SchedulerWatch* watch,
               const absl::Notification* stop, RejoinState* rejoin)
      : ctx_(ctx),
        options_(options),
        scheduler_(std::move(scheduler)),
        watch_(watch),
        stop_(stop),
        rejoin_(rejoin) {}
  // New clients for the view's servers.
  absl::Status Connect(const net::ClusterView& view);
  // Runs a scheduler call until it succeeds, fails otherwise, or the watch ends.
  template <typename Call>
  auto Retry(const char* what, Call&& call) -> decltype(call());
  bool ShouldStop() const;
  // A pending rollback as the loop's restart (clears the unreported progress).
  StepGrant Restart();
  void Publish(const LoopProgress& progress);
  // What the next Clock says about training: the mean loss of the steps since the
  // previous Clock (this call starts a new mean) and the examples so far.
  net::ClockStats TakeStats();

  const net::ZmqContext* const ctx_;
  const ClusterPacerOptions options_;
  std::unique_ptr<net::MembershipClient> scheduler_;
  const net::SchedulerWatch* const watch_;
  const absl::Notification* const stop_;
  RejoinState* const rejoin_;
  SwappableParams params_, prefetch_params_;
  uint64_t job_id_ = 0;
  uint64_t epoch_ = 0;
  int num_workers_ = 1;
  bool asynchronous_ = false;
  bool pending_restart_ = false;
  int64_t restart_finished_ = 0;
  int64_t clock_finished_ = -kAsyncClockEvery;  // `finished` at the last exchange
  int64_t finished_ = 0;                        // the loop's clock, last published
  int64_t last_step_ = 0;
  float last_lr_ = 1.0f;
  double loss_sum_ = 0;     // finite step losses since the last Clock
  int64_t loss_steps_ = 0;  // and how many
  int64_t examples_ = 0;    // examples finished by this process
  std::vector<net::PartitionState> finished_partitions_;
};

}  // namespace towerps::worker

#endif  // TOWERPS_WORKER_CLUSTER_PACER_H_
