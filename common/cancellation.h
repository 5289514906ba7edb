// A one-shot cancellation signal with a reason: set once by whoever learns that the
// work must end (e.g. a watch of the scheduler that sees the job fail), read by any
// number of threads that poll it between blocking steps (RPC waits, retry loops).
//
// Thread-safe. The first Cancel() wins; later calls are ignored.
#ifndef TOWERPS_COMMON_CANCELLATION_H_
#define TOWERPS_COMMON_CANCELLATION_H_

#include <atomic>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace towerps {

class Cancellation {
 public:
  Cancellation() = default;
  Cancellation(const Cancellation&) = delete;
  Cancellation& operator=(const Cancellation&) = delete;

  // Cancels with `reason` (must not be OK) unless already cancelled. Wakes WaitFor.
  void Cancel(absl::Status reason) {
    absl::MutexLock lock(&mu_);
    if (cancelled_.load(std::memory_order_relaxed)) return;
    reason_ = reason.ok() ? absl::CancelledError("cancelled") : std::move(reason);
    cancelled_.store(true, std::memory_order_release);
  }

  // Lock-free; cheap enough to call in a polling loop.
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }

  // The reason given to Cancel, or OK while not cancelled.
  absl::Status reason() const {
    absl::MutexLock lock(&mu_);
    return reason_;
  }

  // Blocks until cancelled or `timeout` passed; returns cancelled().
  bool WaitFor(absl::Duration timeout) const {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&IsSet, &cancelled_), timeout);
    return cancelled_.load(std::memory_order_relaxed);
  }

 private:
  static bool IsSet(const std::atomic<bool>* flag) { return flag->load(); }

  mutable absl::Mutex mu_;
  std::atomic<bool> cancelled_{false};
  absl::Status reason_ ABSL_GUARDED_BY(mu_);
};

}  // namespace towerps

#endif  // TOWERPS_COMMON_CANCELLATION_H_
