// `towerps ctl status --watch`: asks the scheduler for the job's status every
// interval and shows it (status_view.h) until the job ends or the caller stops it.
//   - screen mode (a terminal): each status redraws the screen (ANSI clear + home);
//   - line mode: the progress line once per interval, plus a line when the phase
//     changes;
//   - while the scheduler does not answer (starting, restarting under --recover) it
//     says "scheduler unreachable, retrying" and keeps asking; it gives up after
//     give_up_ms without an answer (0: never). Once the job was seen, an unreachable
//     scheduler whose job file says done or failed ends the watch as that;
//   - a reply that is not a status is an error line; the watch goes on.
//
// Thread-compatible: WatchStatus runs on the caller's thread.
#ifndef TOWERPS_SCHEDULER_STATUS_WATCH_H_
#define TOWERPS_SCHEDULER_STATUS_WATCH_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "common/clock.h"

namespace towerps::scheduler {

struct StatusWatchOptions {
  // Between two status requests, milliseconds; > 0.
  int64_t interval_ms = 2000;
  // Give up after this long without an answer, milliseconds; 0 = never; >= 0.
  int64_t give_up_ms = 0;
  // Redraw a screen (a terminal) rather than print progress lines.
  bool screen = false;
  // Screen width in columns (the progress bar's length).
  int width = 80;

  absl::Status Validate() const;
};

// What the watch talks to (all borrowed; fetch and write required).
struct StatusWatchIo {
  // One status request: the reply's JSON text, or why there is none.
  std::function<absl::StatusOr<std::string>()> fetch;
  // The job file's state ("running", "done", "failed"; "" unknown); may be empty.
  std::function<std::string()> job_file_state;
  // Writes text to the output as it is (lines end in '\n').
  std::function<void(const std::string&)> write;
  // Notified to end the watch (SIGINT, SIGTERM); may be null.
  const absl::Notification* stop = nullptr;
  // Time for give_up_ms (the interval is waited in real time).
  const Clock* clock = nullptr;
};

// Runs the watch. Returns the exit code: 0 when the job is done or `stop` was
// notified, 1 when the job failed or the scheduler stayed unreachable for
// give_up_ms; 2 for invalid options.
int WatchStatus(const StatusWatchOptions& options, const StatusWatchIo& io);

}  // namespace towerps::scheduler

#endif  // TOWERPS_SCHEDULER_STATUS_WATCH_H_
