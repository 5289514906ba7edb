// `towerps dashboard`: renders a run directory's metrics.jsonl, events.jsonl and
// evaluations.jsonl into one self-contained HTML page (docs/dashboard.md), once or,
// watching a live run, every watch_interval_ms until stopped.
//
// Memory is bounded by options.limits whatever the files hold; malformed lines are
// listed on the page, never an error. Thread-compatible; Watch blocks its caller.
#ifndef TOWERPS_DASHBOARD_DASHBOARD_H_
#define TOWERPS_DASHBOARD_DASHBOARD_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/cancellation.h"
#include "dashboard/run_data.h"

namespace towerps::dashboard {

struct DashboardOptions {
  // The job's --run_dir (holds metrics.jsonl). Required; must exist.
  std::string run_dir;
  // The page written; "" = <run_dir>/dashboard.html.
  std::string output;
  // Rewrite the page every watch_interval_ms until cancelled; the page reloads itself.
  bool watch = false;
  // Interval of the rewrites and the page's reloads, ms; >= 200.
  int64_t watch_interval_ms = 5000;
  // What the readers keep (points per series, series, problems listed, line length).
  ReadLimits limits;

  absl::Status Validate() const;
  // output, or its default.
  std::string OutputPath() const;
};

// What one rendering produced.
struct RenderStats {
  uint64_t page_bytes = 0;
  int64_t metrics_lines = 0;
  int64_t problems = 0;
  int64_t series = 0;
  int64_t points = 0;
};

// Reads the run and returns the page. `stats` may be null. Errors: InvalidArgument
// (options), read errors other than absent files (errno-mapped).
absl::StatusOr<std::string> RenderDashboard(const DashboardOptions& options, RenderStats* stats);

// RenderDashboard, then writes the page atomically (temporary file + rename) to
// OutputPath(). Errors: those of RenderDashboard and of the write.
absl::Status WriteDashboard(const DashboardOptions& options, RenderStats* stats);

// WriteDashboard now and every watch_interval_ms until `stop` is cancelled (wakes at
// once). A failed rewrite is logged and retried at the next interval;
// returns the first write's error, else OK once stopped.
absl::Status WatchDashboard(const DashboardOptions& options, const Cancellation& stop);

}  // namespace towerps::dashboard

#endif  // TOWERPS_DASHBOARD_DASHBOARD_H_
