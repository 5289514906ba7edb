// Reading the scheduler's status JSON (what `towerps ctl status` prints; the keys
// are listed in docs/distributed.md, "Watching a job") and rendering it for
// `towerps ctl status --watch`: a screen for a terminal, or the progress line that
// `towerps train` prints (common/progress_line.h).
//
// The reply is hostile: anything but a JSON object with a string "phase" is an
// error; other keys that are missing or of the wrong type read as unknown (an older
// scheduler lacks the newer keys); strings are stripped of control characters
// before they reach a terminal.
//
// Thread-safe (pure functions).
#ifndef TOWERPS_SCHEDULER_STATUS_VIEW_H_
#define TOWERPS_SCHEDULER_STATUS_VIEW_H_

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace towerps::scheduler {

inline constexpr double kUnknown = std::numeric_limits<double>::quiet_NaN();

// One server or worker of the status ("unknown" figures: -1 or NaN).
struct NodeStatus {
  int64_t rank = -1;  // -1: never registered
  bool alive = false;
  std::string endpoint;  // servers
  int64_t steps = 0;     // workers: finished steps
  bool finished = false;
  double loss = kUnknown;
  int64_t examples = 0;
  double last_seen_s = -1;
};

struct JobStatusView {
  std::string phase;  // scheduler::PhaseName: registering, training, ..., done, failed
  int64_t global_step = 0;
  int64_t planned_steps = 0;  // 0: unknown
  int64_t epoch = 0;
  double lr_scale = kUnknown;
  int64_t staleness = 0;
  double elapsed_s = -1;
  double steps_per_s = 0;
  double examples_per_s = 0;
  double eta_s = -1;
  double loss = kUnknown;
  std::vector<NodeStatus> servers;
  std::vector<NodeStatus> workers;
  int64_t partitions_done = 0;
  int64_t partitions = 0;
  std::string last_checkpoint;  // directory, "" for none
  int64_t last_checkpoint_step = -1;
  double last_checkpoint_age_s = -1;
};

// Parses a status reply. InvalidArgument for text that is not a JSON object with a
// string "phase".
absl::StatusOr<JobStatusView> ParseStatusJson(absl::string_view text);

// The terminal screen (lines of at most ~`width` columns, '\n'-terminated, no
// escape sequences): phase, step of planned steps with a progress bar, ETA,
// examples/s, loss, LR scale, each server's and worker's liveness, the last
// checkpoint.
std::string RenderStatusScreen(const JobStatusView& status, int width = 80);

// The progress line (FormatProgressLine) of the status.
std::string RenderStatusLine(const JobStatusView& status);

// "45s", "3m07s", "2h05m", "?" for a negative or non-finite number of seconds.
std::string FormatSeconds(double seconds);

}  // namespace towerps::scheduler

#endif  // TOWERPS_SCHEDULER_STATUS_VIEW_H_
