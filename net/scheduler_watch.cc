#include "net/scheduler_watch.h"

#include <pthread.h>

#include <chrono>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "glog/logging.h"

namespace towerps::net {

absl::Status SchedulerWatchOptions::Validate() const {
  if (role != kRoleServer && role != kRoleWorker) {
    return absl::InvalidArgumentError("the watched node is neither a server nor a worker");
  }
  if (rank < 0) return absl::InvalidArgumentError("the watched node has no rank");
  if (heartbeat_interval_ms <= 0) {
    return absl::InvalidArgumentError("heartbeat_interval_ms must be > 0");
  }
  if (scheduler_timeout_ms <= heartbeat_interval_ms) {
    return absl::InvalidArgumentError("scheduler_timeout_ms must be > heartbeat_interval_ms");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<SchedulerWatch>> SchedulerWatch::Start(
    const ZmqContext* ctx, const SchedulerWatchOptions& options) {
  TOWERPS_RETURN_IF_ERROR(options.Validate());
  RpcClientOptions rpc = options.rpc;
  rpc.timeout_ms = options.heartbeat_interval_ms;
  rpc.max_attempts = 1;  // the loop itself is the retry
  rpc.cancel = nullptr;
  TOWERPS_ASSIGN_OR_RETURN(auto client, MembershipClient::Connect(ctx, rpc));
  std::unique_ptr<SchedulerWatch> watch(new SchedulerWatch(options, std::move(client)));
  SchedulerWatch* raw = watch.get();
  watch->thread_ = std::thread([raw] { raw->Loop(); });
  return watch;
}

SchedulerWatch::~SchedulerWatch() { Stop(); }

void SchedulerWatch::Stop() {
  if (stopped_.exchange(true)) return;
  stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

absl::Status SchedulerWatch::status() const {
  absl::MutexLock lock(&mu_);
  return status_;
}

std::string SchedulerWatch::reason() const {
  absl::MutexLock lock(&mu_);
  return reason_;
}

void SchedulerWatch::End(absl::Status status) {
  std::map<uint64_t, std::shared_ptr<Cancellation>> cancels;
  {
    absl::MutexLock lock(&mu_);
    status_ = status;
    if (!status.ok()) {
      // Under mu_: EpochCancellation sees either the live map or cancel_ cancelled.
      cancel_.Cancel(status);
      cancels.swap(epoch_cancels_);
    }
  }
  for (auto& [epoch, cancel] : cancels) cancel->Cancel(status);
  ended_.Notify();
}

std::shared_ptr<const Cancellation> SchedulerWatch::EpochCancellation(uint64_t epoch) const {
  auto cancel = std::make_shared<Cancellation>();
  absl::MutexLock lock(&mu_);
  if (cancel_.cancelled()) {
    cancel->Cancel(status_);
  } else if (epoch < epoch_.load()) {
    cancel->Cancel(absl::UnavailableError(
        absl::StrCat("membership epoch ", epoch, " -> ", epoch_.load())));
  } else {
    auto [it, inserted] = epoch_cancels_.try_emplace(epoch, cancel);
    return it->second;
  }
  return cancel;
}

void SchedulerWatch::SawEpoch(uint64_t epoch) {
  std::vector<std::pair<uint64_t, std::shared_ptr<Cancellation>>> passed;
  {
    absl::MutexLock lock(&mu_);
    if (epoch <= epoch_.load()) return;
    epoch_ = epoch;
    auto end = epoch_cancels_.lower_bound(epoch);
    passed.assign(epoch_cancels_.begin(), end);
    epoch_cancels_.erase(epoch_cancels_.begin(), end);
  }
  for (auto& [old, cancel] : passed) {
    cancel->Cancel(absl::UnavailableError(absl::StrCat("membership epoch ", old, " -> ", epoch)));
  }
}

void SchedulerWatch::Loop() {
  pthread_setname_np(pthread_self(), "sched-watch");
  using SteadyClock = std::chrono::steady_clock;
  const std::string& endpoint = options_.rpc.endpoint;
  auto last_answer = SteadyClock::now();
  auto next_beat = SteadyClock::now();
  while (!ended()) {
    if (stop_.WaitForNotificationWithTimeout(
            absl::FromChrono(std::max(next_beat - SteadyClock::now(), SteadyClock::duration(0))))) {
      return;
    }
    next_beat = SteadyClock::now() + std::chrono::milliseconds(options_.heartbeat_interval_ms);
    absl::StatusOr<ClockView> beat = client_->Heartbeat(options_.role, options_.rank);
    if (beat.ok()) {
      last_answer = SteadyClock::now();
      phase_ = beat->phase;
      SawEpoch(beat->epoch);
      {
        absl::MutexLock lock(&mu_);
        reason_ = beat->reason;
      }
      if (beat->phase == kPhaseDone) {
        End(absl::OkStatus());
      } else if (beat->phase == kPhaseFailed) {
        End(absl::AbortedError(absl::StrCat(
            "the job failed: ", beat->reason.empty() ? "(no reason given)" : beat->reason)));
      }
      continue;
    }
    if (absl::IsNotFound(beat.status()) && options_.rejoin) {
      // A restarted scheduler: this node registers again and carries on.
      absl::Status rejoined = options_.rejoin(client_.get());
      if (rejoined.ok()) {
        LOG(INFO) << options_.rpc.name << ": registered again with the scheduler at " << endpoint;
        last_answer = SteadyClock::now();
        next_beat = SteadyClock::now();  // the new phase at once
        continue;
      }
      if (!absl::IsUnavailable(rejoined) && !absl::IsDeadlineExceeded(rejoined) &&
          !absl::IsNotFound(rejoined)) {
        End(absl::AbortedError(
            absl::StrCat("the scheduler at ", endpoint,
                         " refused this node's registration: ", rejoined.message())));
        continue;
      }
      LOG(WARNING) << options_.rpc.name << ": registering again: " << rejoined;
    } else if (!absl::IsDeadlineExceeded(beat.status()) && !absl::IsUnavailable(beat.status())) {
      // An answer that refuses this node (declared dead, replaced, unknown): its work
      // is void.
      End(absl::AbortedError(
          absl::StrCat("the scheduler refused this node: ", beat.status().message())));
      continue;
    }
    const auto silent =
        std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - last_answer);
    if (silent.count() >= options_.scheduler_timeout_ms) {
      End(absl::AbortedError(absl::StrCat("the scheduler at ", endpoint, " has not answered for ",
                                          silent.count() / 1000, " s; giving up")));
    } else {
      VLOG(1) << options_.rpc.name << ": heartbeat: " << beat.status();
    }
  }
}

}  // namespace towerps::net
