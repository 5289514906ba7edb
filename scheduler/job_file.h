// The scheduler's job file, <run_dir>/scheduler.job: which job the scheduler of this
// run directory runs, where it listens and whether the job is still running, so a
// restarted scheduler (`towerps scheduler --recover`) adopts the job at the same
// endpoint. Text, one item per line, written atomically:
//   job <job id, 16 hex digits>
//   endpoint <tcp://host:port>
//   state running|done|failed
//   epoch <membership epoch>     (a restarted scheduler continues past it)
//
// Thread-safe (pure functions over files).
#ifndef TOWERPS_SCHEDULER_JOB_FILE_H_
#define TOWERPS_SCHEDULER_JOB_FILE_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace towerps::scheduler {

struct JobFile {
  uint64_t job_id = 0;
  std::string endpoint;
  std::string state = "running";  // running | done | failed
  uint64_t epoch = 1;
};

// Reads and parses `path`. Errors: NotFound when absent; DataLoss for a malformed
// file (an unknown line, a missing item, a bad number, state or endpoint).
absl::StatusOr<JobFile> ReadJobFile(const std::string& path);

// Writes `path` atomically. InvalidArgument for an unknown state or an endpoint that
// is not one line.
absl::Status WriteJobFile(const std::string& path, const JobFile& job);

}  // namespace towerps::scheduler

#endif  // TOWERPS_SCHEDULER_JOB_FILE_H_
