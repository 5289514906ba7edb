#include "common/event_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
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
  // One write: with O_APPEND the line lands whole at the end of the file. A short
  // write (full disk) is not completed with a second one, which another appender
  // could interleave with; the reader reports the torn line instead.
  ssize_t written;
  do {
    written = ::write(fd_, text.data(), text.size());
  } while (written < 0 && errno == EINTR);
  if (written == static_cast<ssize_t>(text.size())) return absl::OkStatus();
  absl::Status status =
      written < 0
          ? ErrnoToStatus(errno, absl::StrCat("append to ", options_.path))
          : absl::ResourceExhaustedError(absl::StrCat("append to ", options_.path, ": ", written,
                                                      " of ", text.size(), " bytes written"));
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
