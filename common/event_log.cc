#include "common/event_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/status.h"
#include "glog/logging.h"

namespace towerps {

absl::Status EventLogOptions::Validate() const {
  if (path.empty()) return absl::InvalidArgumentError("event log path is empty");
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<EventLog>> EventLog::Create(const EventLogOptions& options,
                                                           const Clock* clock) {
  TOWERPS_RETURN_IF_ERROR(options.Validate());
  int fd = ::open(options.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open ", options.path));
  return std::unique_ptr<EventLog>(new EventLog(options, clock, fd));
}

EventLog::EventLog(const EventLogOptions& options, const Clock* clock, int fd)
    : options_(options), clock_(clock), fd_(fd) {}

EventLog::~EventLog() { ::close(fd_); }

absl::Status EventLog::Append(absl::string_view event, const JsonObject& fields) {
  absl::MutexLock lock(&mu_);
  JsonObject line;
  line.Add("ts_ms", clock_->WallMillis()).Add("event", event).Merge(fields);
  std::string text = line.ToString();
  text.push_back('\n');
  // One write (AppendOnce): the line lands whole, or the append fails.
  absl::Status status = AppendOnce(fd_, text, options_.path);
  if (status.ok()) return status;
  if (write_errors_++ % 100 == 0) {
    LOG(WARNING) << "event log: " << status << " (" << write_errors_ << " failed so far; the "
                 << event << " event is lost)";
  }
  return status;
}

int64_t EventLog::write_errors() const {
  absl::MutexLock lock(&mu_);
  return write_errors_;
}

}  // namespace towerps
