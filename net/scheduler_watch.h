// SchedulerWatch: a node's thread that follows its job through the scheduler. It
// heartbeats every heartbeat_interval_ms on its own connection (so a node busy in a
// long request stays alive), records the job's phase, and ends the node's work when
// the job is over:
//   - phase done                       -> ended(), status OK;
//   - phase failed                     -> ended(), Aborted "the job failed: <reason>";
//   - NotFound (a restarted scheduler does not know the node) -> `rejoin` re-registers
//     it and the watch carries on (without `rejoin`: ended(), Aborted);
//   - the scheduler refuses the node (FailedPrecondition: declared dead or replaced
//     by a new process; or another refusal) -> ended(), Aborted: the node must exit
//     and its supervisor starts it again as a new process;
//   - no answer for scheduler_timeout_ms -> ended(), Aborted "the scheduler at
//     <endpoint> has not answered for N s".
// On every end but done it cancels cancellation() with that status, so RPC clients
// carrying it (RpcClientOptions::cancel) give up at once instead of retrying.
// Every heartbeat reply carries the membership epoch: EpochCancellation(e) is
// cancelled (Unavailable) as soon as a reply shows an epoch past e (a server was
// replaced or the job rolled back), so a request in flight to a dead server is
// abandoned then instead of waiting out its deadline; and with status() when the job
// ends other than done.
//
// Thread: "sched-watch", started by Start, joined by Stop (idempotent; the
// destructor calls it). Thread-safe.
#ifndef TOWERPS_NET_SCHEDULER_WATCH_H_
#define TOWERPS_NET_SCHEDULER_WATCH_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/cancellation.h"
#include "net/membership_client.h"
#include "net/transport.h"

namespace towerps::net {

struct SchedulerWatchOptions {
  // The scheduler's endpoint, name and codec; timeout_ms and max_attempts are set
  // from the fields below (one attempt per heartbeat).
  RpcClientOptions rpc;
  // The watched node: kRoleServer or kRoleWorker, and its rank (>= 0).
  uint8_t role = kRoleWorker;
  int rank = -1;
  // Heartbeat period, milliseconds; > 0.
  int64_t heartbeat_interval_ms = 1000;
  // The scheduler is given up after this long without an answer, milliseconds;
  // > heartbeat_interval_ms. Default 60 s: the time a restarted scheduler has to
  // come back (a supervisor restarts it with --recover).
  int64_t scheduler_timeout_ms = 60000;
  // Called on the watch thread when the scheduler answers a heartbeat with NotFound
  // (a restarted scheduler that does not know this node yet): re-registers the node
  // through `client` with its Rejoin state (docs/distributed.md). Null: such an
  // answer ends the node like any refusal. Unavailable, DeadlineExceeded and
  // NotFound errors are retried at the next heartbeat (within scheduler_timeout_ms);
  // any other error (FailedPrecondition: the scheduler runs another job, or the rank
  // was taken by a new process) ends the node.
  std::function<absl::Status(MembershipClient* client)> rejoin;

  absl::Status Validate() const;
};

class SchedulerWatch {
 public:
  // Starts the thread (its first heartbeat goes out at once). ctx is borrowed.
  static absl::StatusOr<std::unique_ptr<SchedulerWatch>> Start(
      const ZmqContext* ctx, const SchedulerWatchOptions& options);
  ~SchedulerWatch();
  // Joins the thread. Idempotent.
  void Stop();

  // The last phase the scheduler reported (kPhaseRegistering before the first).
  uint8_t phase() const { return phase_.load(); }
  // True once the job is done or failed, the scheduler is gone or refused the node.
  bool ended() const { return ended_.HasBeenNotified(); }
  // Blocks until ended() or `timeout`; returns ended().
  bool WaitForEnd(absl::Duration timeout) const {
    return ended_.WaitForNotificationWithTimeout(timeout);
  }
  // OK while running or after done; otherwise why the job ended for this node.
  absl::Status status() const;
  // The reason the scheduler gave with the last phase (stopping, failed); may be "".
  std::string reason() const;
  // Cancelled with status() when the job ends other than done.
  const Cancellation* cancellation() const { return &cancel_; }
  // The newest membership epoch a heartbeat reply carried (0 before the first).
  uint64_t epoch() const { return epoch_.load(); }
  // For requests of membership epoch `epoch`: cancelled with Unavailable ("membership
  // epoch e -> e'") once a heartbeat shows a later epoch (at once if one did), and
  // with status() when the job ends other than done. Give it to the clients built
  // for that epoch (RpcClientOptions::cancel) and keep it as long as they live.
  std::shared_ptr<const Cancellation> EpochCancellation(uint64_t epoch) const;

 private:
  SchedulerWatch(const SchedulerWatchOptions& options, std::unique_ptr<MembershipClient> client)
      : options_(options), client_(std::move(client)) {}
  void Loop();
  void End(absl::Status status);
  // A heartbeat showed `epoch`: cancels the cancellations of earlier epochs.
  void SawEpoch(uint64_t epoch);

  const SchedulerWatchOptions options_;
  std::unique_ptr<MembershipClient> client_;  // only the watch thread
  std::atomic<uint8_t> phase_{kPhaseRegistering};
  mutable absl::Mutex mu_;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  std::string reason_ ABSL_GUARDED_BY(mu_);
  Cancellation cancel_;
  std::atomic<uint64_t> epoch_{0};
  // Live epoch cancellations (epochs >= epoch_), cancelled and dropped when passed.
  mutable std::map<uint64_t, std::shared_ptr<Cancellation>> epoch_cancels_ ABSL_GUARDED_BY(mu_);
  absl::Notification ended_;
  absl::Notification stop_;
  std::thread thread_;
  std::atomic<bool> stopped_{false};
};

}  // namespace towerps::net

#endif  // TOWERPS_NET_SCHEDULER_WATCH_H_
