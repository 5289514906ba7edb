// EventLog: appends one JSON object per event to a file (a scheduler's
// <run_dir>/events.jsonl; schema: docs/metrics.md). Every line is
//   {"ts_ms": <Clock::WallMillis()>, "event": "<name>", <the event's fields>...}
// written with one write() on a descriptor opened with O_APPEND, so a reader (the
// dashboard, `tail -f`) never sees a torn line from a live writer, and other
// appenders to the same file cannot interleave inside one.
//
// A failed write (full disk, I/O error) is returned and logged (WARNING, rate
// limited) and counted; the log stays usable, so a caller whose work must go on (the
// scheduler) may ignore the Status. Thread-safe: lines appear in the order of their
// ts_ms.
#ifndef TOWERPS_COMMON_EVENT_LOG_H_
#define TOWERPS_COMMON_EVENT_LOG_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/json.h"

namespace towerps {

struct EventLogOptions {
  // The file lines are appended to, created (mode 0644) when missing, e.g.
  // <run_dir>/events.jsonl. Required.
  std::string path;

  // InvalidArgument for an empty path.
  absl::Status Validate() const;
};

class EventLog {
 public:
  // Validates and opens options.path for appending. `clock` is borrowed (must outlive
  // the log). Errors: InvalidArgument (options), errno-mapped open errors (NotFound
  // for a missing directory, PermissionDenied).
  static absl::StatusOr<std::unique_ptr<EventLog>> Create(const EventLogOptions& options,
                                                          const Clock* clock);
  ~EventLog();
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  // Appends {"ts_ms", "event": event, fields...} and a newline in one write().
  // `fields` must not repeat "ts_ms" or "event". Blocks for the write only. Errors:
  // errno-mapped write errors (ResourceExhausted for a full disk), also logged and
  // counted in write_errors().
  absl::Status Append(absl::string_view event, const JsonObject& fields = JsonObject());

  // Appends that failed so far.
  int64_t write_errors() const;
  const std::string& path() const { return options_.path; }

 private:
  EventLog(const EventLogOptions& options, const Clock* clock, int fd);

  // Constant after construction.
  const EventLogOptions options_;
  const Clock* const clock_;
  const int fd_;

  mutable absl::Mutex mu_;
  int64_t write_errors_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace towerps

#endif  // TOWERPS_COMMON_EVENT_LOG_H_
