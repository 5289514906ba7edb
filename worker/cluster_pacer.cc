#include "worker/cluster_pacer.h"

#include <chrono>
#include <cmath>
#include <random>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "glog/logging.h"
#include "ps/shard_map.h"

namespace towerps::worker {
namespace {

using Clock = std::chrono::steady_clock;

// Scheduler answers worth waiting out: it is gone for now (a supervisor restarts
// it) or it was restarted and does not know this worker until the watch rejoins.
bool SchedulerMayReturn(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status) ||
         absl::IsNotFound(status);
}

bool IsWaiting(uint8_t phase) {
  return phase == net::kPhasePaused || phase == net::kPhaseRecovering;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ClusterPacer>> ClusterPacer::Create(
    const net::ZmqContext* ctx, const ClusterPacerOptions& options, const net::ClusterView& view,
    int64_t finished, std::unique_ptr<net::MembershipClient> scheduler,
    const net::SchedulerWatch* watch, const absl::Notification* stop, RejoinState* rejoin) {
  if (options.rank < 0 || options.partition_poll_ms <= 0 || options.init_timeout_ms <= 0) {
    return absl::InvalidArgumentError("cluster pacer: rank, partition_poll_ms, init_timeout_ms");
  }
  std::unique_ptr<ClusterPacer> pacer(
      new ClusterPacer(ctx, options, std::move(scheduler), watch, stop, rejoin));
  pacer->job_id_ = view.job_id;
  pacer->epoch_ = view.epoch;
  pacer->num_workers_ = std::max(1, view.num_workers);
  pacer->asynchronous_ = view.staleness < 0;
  TOWERPS_RETURN_IF_ERROR(pacer->Connect(view));
  LoopProgress progress;
  progress.finished = finished;
  pacer->Publish(progress);
  return pacer;
}

absl::Status ClusterPacer::Connect(const net::ClusterView& view) {
  ps::PsClientOptions client = options_.client;
  // Servers apply a push once per (client id, seq), and a new client's seq restarts
  // at 1: each client set (after a reconnect, or in a replaced worker's process)
  // takes an id of its own, or the surviving servers would skip its pushes as
  // duplicates. Low 32 bits: the template's (rank + 1); bit 32: prefetch; above: random.
  std::random_device random;
  const uint64_t nonce = ((uint64_t{random()} << 32 | random()) & ((uint64_t{1} << 31) - 1)) | 1;
  client.client_id = (options_.client.client_id & 0xFFFFFFFFu) | (nonce << 33);
  client.server_endpoints = view.server_endpoints;
  // Abandoned when the watch sees a later epoch (a replaced server, a rollback) or
  // the job ends: the loop then reconnects instead of waiting out the deadline.
  std::shared_ptr<const Cancellation> cancel = watch_->EpochCancellation(view.epoch);
  client.rpc.cancel = cancel.get();
  client.defer_push_replies = view.staleness != 0;
  TOWERPS_ASSIGN_OR_RETURN(client.server_public_keys,
                           options_.keys.ServerPublicKeys(view.num_servers));
  TOWERPS_ASSIGN_OR_RETURN(ps::ShardMap map,
                           ps::ShardMap::FromWire(view.shard_owners, view.num_servers));
  TOWERPS_ASSIGN_OR_RETURN(auto params, ps::PsClient::Create(ctx_, client, std::move(map)));
  params_.Reset(std::move(params), cancel);
  if (options_.prefetch) {
    TOWERPS_ASSIGN_OR_RETURN(ps::ShardMap prefetch_map,
                             ps::ShardMap::FromWire(view.shard_owners, view.num_servers));
    client.rpc.name = options_.name + "/prefetch";
    client.client_id += uint64_t{1} << 32;
    TOWERPS_ASSIGN_OR_RETURN(auto prefetch,
                             ps::PsClient::Create(ctx_, client, std::move(prefetch_map)));
    prefetch_params_.Reset(std::move(prefetch), cancel);
  }
  return absl::OkStatus();
}

template <typename Call>
auto ClusterPacer::Retry(const char* what, Call&& call) -> decltype(call()) {
  bool logged = false;
  while (true) {
    auto result = call();
    if (result.ok() || !SchedulerMayReturn(result.status())) return result;
    if (watch_->ended()) {
      absl::Status ended = watch_->status();
      return ended.ok() ? result.status() : ended;
    }
    if (!logged) {
      LOG(WARNING) << options_.name << ": " << what << ": " << result.status()
                   << "; retrying until the scheduler answers";
      logged = true;
    }
    (void)watch_->WaitForEnd(absl::Milliseconds(kRecoveryPollMs));
  }
}

bool ClusterPacer::ShouldStop() const {
  const uint8_t phase = watch_->phase();
  return stop_->HasBeenNotified() || phase == net::kPhaseStopping || phase == net::kPhaseDone;
}

void ClusterPacer::Publish(const LoopProgress& progress) {
  finished_ = progress.finished;
  net::Rejoin rejoin;
  rejoin.job_id = job_id_;
  rejoin.finished_steps = progress.finished;
  rejoin.global_step = last_step_;
  rejoin.partitions = finished_partitions_;
  if (progress.partition >= 0) {
    rejoin.partitions.push_back({progress.partition, progress.offset, /*done=*/false});
  }
  rejoin_->Publish(std::move(rejoin));
}

StepGrant ClusterPacer::Restart() {
  StepGrant grant;
  grant.kind = StepGrant::Kind::kRestart;
  grant.finished = restart_finished_;
  pending_restart_ = false;
  finished_partitions_.clear();
  clock_finished_ = restart_finished_ - kAsyncClockEvery;
  LoopProgress progress;
  progress.finished = restart_finished_;
  Publish(progress);
  return grant;
}

absl::Status ClusterPacer::InitDense(StepRunner* runner) {
  // Worker 0 initialises the dense parameters; the others wait until they are there.
  const auto deadline = Clock::now() + std::chrono::milliseconds(options_.init_timeout_ms);
  while (true) {
    absl::Status init = runner->InitDense(/*assign=*/options_.rank == 0);
    if (init.ok()) return init;
    if (!absl::IsUnavailable(init) || Clock::now() > deadline || watch_->ended()) return init;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

absl::StatusOr<PartitionStart> ClusterPacer::NextPartition(const LoopProgress& progress,
                                                           bool done) {
  PartitionStart start;
  if (pending_restart_) {
    StepGrant restart = Restart();
    start.kind = restart.kind;
    start.finished = restart.finished;
    return start;
  }
  if (done) finished_partitions_.push_back({progress.partition, progress.offset, true});
  TOWERPS_ASSIGN_OR_RETURN(net::PartitionGrant grant, Retry("partition", [&] {
    return scheduler_->Partition(options_.rank, done ? progress.partition : -1,
                                 done ? progress.offset : 0, done);
  }));
  bool waiting_logged = false;
  while (grant.partition < 0 && grant.wait) {
    // Other workers hold unfinished partitions: stay in the job to take over any
    // that a dead worker releases (or all of them after a rollback).
    if (!waiting_logged) {
      LOG(INFO) << options_.name << ": no partition free; waiting for one to be released";
      waiting_logged = true;
    }
    (void)stop_->WaitForNotificationWithTimeout(absl::Milliseconds(options_.partition_poll_ms));
    if (ShouldStop()) {
      start.kind = StepGrant::Kind::kStop;
      return start;
    }
    // The clock carries the epoch: a replaced server or a rollback is noticed here too.
    const net::ClockStats stats = TakeStats();
    TOWERPS_ASSIGN_OR_RETURN(net::ClockView clock, Retry("clock", [&] {
      return scheduler_->Clock(options_.rank, progress.finished, progress.finished, false, -1, 0,
                               stats);
    }));
    if (clock.phase == net::kPhaseFailed) {
      return absl::AbortedError(absl::StrCat("the job failed: ", clock.reason));
    }
    if (clock.epoch != epoch_) {
      start.kind = StepGrant::Kind::kReconnect;
      return start;
    }
    TOWERPS_ASSIGN_OR_RETURN(grant, Retry("partition", [&] {
      return scheduler_->Partition(options_.rank, -1, 0, false);
    }));
  }
  start.partition = grant.partition;
  start.offset = grant.offset;
  if (grant.partition >= 0) {
    LOG(INFO) << options_.name << ": partition " << grant.partition << " from example "
              << grant.offset;
  }
  LoopProgress held = progress;
  held.partition = grant.partition;
  held.offset = grant.offset;
  Publish(held);
  return start;
}

absl::StatusOr<StepGrant> ClusterPacer::MayStart(const LoopProgress& progress) {
  StepGrant grant;  // kStop
  if (ShouldStop()) return grant;
  if (pending_restart_) return Restart();
  grant.kind = StepGrant::Kind::kRun;
  if (asynchronous_ && progress.finished - clock_finished_ < kAsyncClockEvery) {
    // Between clock exchanges of an asynchronous job: the other workers are assumed
    // to keep pace, so the global step advances by one per worker.
    last_step_ += num_workers_;
    grant.step = last_step_;
    grant.lr_scale = last_lr_;
    return grant;
  }
  // Bounded staleness: wait until the scheduler lets this step start.
  const auto wait_start = Clock::now();
  net::ClockView clock;
  while (true) {
    const net::ClockStats stats = TakeStats();
    TOWERPS_ASSIGN_OR_RETURN(clock, Retry("clock", [&] {
      return scheduler_->Clock(options_.rank, progress.finished, progress.finished, false,
                               progress.partition, progress.offset, stats);
    }));
    if (clock.phase == net::kPhaseFailed) {
      return absl::AbortedError(absl::StrCat("the job failed: ", clock.reason));
    }
    if (clock.epoch != epoch_) {
      grant.kind = StepGrant::Kind::kReconnect;
      return grant;
    }
    if (clock.may_start) break;
    if (clock.phase == net::kPhaseDone || clock.phase == net::kPhaseStopping || ShouldStop()) {
      grant.kind = StepGrant::Kind::kStop;
      return grant;
    }
    // Held back by staleness, the step starts as soon as the slowest worker
    // reports: ask again soon. A paused or recovering job waits for an operator or a
    // replacement: ask at a human pace (under CURVE every ask is an encrypted request).
    std::this_thread::sleep_for(IsWaiting(clock.phase)
                                    ? std::chrono::microseconds(kRecoveryPollMs * 1000)
                                    : std::chrono::microseconds(500));
  }
  if (options_.staleness_wait_us) {
    options_.staleness_wait_us->Record(
        std::chrono::duration<double, std::micro>(Clock::now() - wait_start).count());
  }
  clock_finished_ = progress.finished;
  last_step_ = clock.global_step;
  last_lr_ = clock.lr_scale;
  grant.step = last_step_;
  grant.lr_scale = last_lr_;
  return grant;
}

net::ClockStats ClusterPacer::TakeStats() {
  net::ClockStats stats;
  if (loss_steps_ > 0) stats.loss = static_cast<float>(loss_sum_ / loss_steps_);
  stats.examples = examples_;
  loss_sum_ = 0;
  loss_steps_ = 0;
  return stats;
}

absl::Status ClusterPacer::StepDone(const LoopProgress& progress, const StepStats& stats) {
  if (std::isfinite(stats.loss)) {
    loss_sum_ += stats.loss;
    ++loss_steps_;
  }
  examples_ += stats.examples;
  Publish(progress);
  if (asynchronous_ && progress.finished % kReportEverySteps == 0) {
    return Retry("partition report", [&] {
             return scheduler_->Partition(options_.rank, progress.partition, progress.offset,
                                          false);
           }).status();
  }
  return absl::OkStatus();
}

absl::Status ClusterPacer::AwaitRecovery(const absl::Status& status) {
  // A server is gone: the scheduler replaces it and bumps the epoch (or the job
  // fails, or the scheduler goes, and the watch ends).
  while (true) {
    const net::ClockStats stats = TakeStats();
    TOWERPS_ASSIGN_OR_RETURN(net::ClockView clock, Retry("clock", [&] {
      return scheduler_->Clock(options_.rank, finished_, finished_, false, -1, 0, stats);
    }));
    if (clock.phase == net::kPhaseFailed) {
      return absl::AbortedError(absl::StrCat("the job failed: ", clock.reason));
    }
    if (clock.epoch != epoch_) return absl::OkStatus();
    if (watch_->ended() || ShouldStop()) return status;
    (void)watch_->WaitForEnd(absl::Milliseconds(kRecoveryPollMs));
  }
}

absl::Status ClusterPacer::Reconnect(StepRunner* runner) {
  TOWERPS_ASSIGN_OR_RETURN(net::ClusterView view, Retry("cluster query", [&] {
    return scheduler_->Query(net::kRoleWorker, options_.rank);
  }));
  if (view.phase == net::kPhaseFailed) {
    return absl::AbortedError(absl::StrCat("the job failed: ", view.reason));
  }
  LOG(WARNING) << options_.name << ": membership epoch " << epoch_ << " -> " << view.epoch
               << "; reconnecting to " << view.num_servers << " servers";
  TOWERPS_RETURN_IF_ERROR(Connect(view));
  if (view.rollback_epoch > epoch_) {
    pending_restart_ = true;
    restart_finished_ = view.finished_steps;
    last_step_ = view.restore_step >= 0 ? view.restore_step : 0;
  }
  epoch_ = view.epoch;
  // A replaced server may have come back without a dense block: worker 0 sets it.
  return InitDense(runner);
}

absl::Status ClusterPacer::Leave(const LoopProgress& progress, bool stopped) {
  if (stopped && progress.partition >= 0) {
    // The exact progress, so the final checkpoint (or the next taker) resumes here.
    TOWERPS_RETURN_IF_ERROR(Retry("partition report", [&] {
                              return scheduler_->Partition(options_.rank, progress.partition,
                                                           progress.offset, false);
                            }).status());
    LOG(INFO) << options_.name << ": stopping; partition " << progress.partition
              << " reported at example " << progress.offset;
  }
  const net::ClockStats stats = TakeStats();
  return Retry("clock", [&] {
           return scheduler_->Clock(options_.rank, progress.finished, progress.finished,
                                    /*finished=*/true, -1, 0, stats);
         }).status();
}

}  // namespace towerps::worker
