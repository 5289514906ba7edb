// `towerps dashboard --run_dir=DIR [--output=FILE] [--watch]`: the run's metrics,
// events and evaluations as one self-contained HTML page (dashboard/dashboard.h).
#include <cstdio>

#include "absl/status/status.h"
#include "cmd/job_flags.h"
#include "cmd/shared_flags.h"
#include "cmd/stop_signals.h"
#include "cmd/subcommand.h"
#include "common/cancellation.h"
#include "dashboard/dashboard.h"
#include "gflags/gflags.h"

DEFINE_int32(max_points_per_series, 500,
             "points kept per chart line (longer runs are merged pairwise; min/max kept)");
DEFINE_int32(max_series, 256, "chart lines kept over all charts; later ones are reported");

namespace towerps::cmd {

int RunDashboard(int /*argc*/, char** /*argv*/) {
  dashboard::DashboardOptions options;
  options.run_dir = FLAGS_run_dir;
  options.output = FLAGS_output;
  options.watch = FLAGS_watch;
  options.watch_interval_ms = WatchIntervalMsOr(5000);
  options.limits.max_points_per_series = FLAGS_max_points_per_series;
  options.limits.max_series = FLAGS_max_series;
  if (absl::Status s = options.Validate(); !s.ok()) return Fail("dashboard", s);
  if (!options.watch) {
    dashboard::RenderStats stats;
    if (absl::Status s = dashboard::WriteDashboard(options, &stats); !s.ok()) {
      return Fail("dashboard", s);
    }
    std::printf("%s: %lld metrics lines, %lld chart lines, %lld problems, %llu bytes\n",
                options.OutputPath().c_str(), static_cast<long long>(stats.metrics_lines),
                static_cast<long long>(stats.series), static_cast<long long>(stats.problems),
                static_cast<unsigned long long>(stats.page_bytes));
    return 0;
  }
  CatchStopSignals();
  Cancellation stop;
  StopSignalWatcher watcher([&stop](int) { stop.Cancel(absl::CancelledError("signal")); });
  std::printf("%s: rewritten every %lld ms until SIGINT/SIGTERM\n", options.OutputPath().c_str(),
              static_cast<long long>(options.watch_interval_ms));
  std::fflush(stdout);
  if (absl::Status s = dashboard::WatchDashboard(options, stop); !s.ok()) {
    return Fail("dashboard", s);
  }
  return 0;
}

}  // namespace towerps::cmd
