#include "dashboard/dashboard.h"

#include <sys/stat.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/file_util.h"
#include "dashboard/events_reader.h"
#include "dashboard/metrics_reader.h"
#include "dashboard/page.h"
#include "glog/logging.h"

namespace towerps::dashboard {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

absl::Status DashboardOptions::Validate() const {
  if (run_dir.empty()) return absl::InvalidArgumentError("--run_dir is required");
  struct stat st;
  if (::stat(run_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat("--run_dir ", run_dir, " is not a directory"));
  }
  if (watch_interval_ms < 200) {
    return absl::InvalidArgumentError(
        absl::StrCat("--watch_interval_ms must be >= 200, got ", watch_interval_ms));
  }
  if (limits.max_points_per_series < 2 || limits.max_series < 1 || limits.max_problems < 0 ||
      limits.max_line_bytes < 1024 || limits.max_events < 1 || limits.max_evaluations < 1) {
    return absl::InvalidArgumentError("dashboard limits out of range");
  }
  return absl::OkStatus();
}

std::string DashboardOptions::OutputPath() const {
  return output.empty() ? absl::StrCat(run_dir, "/dashboard.html") : output;
}

absl::StatusOr<std::string> RenderDashboard(const DashboardOptions& options, RenderStats* stats) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  ProblemLog problems(options.limits.max_problems);
  MetricsData metrics;
  EventsData events;
  EvaluationsData evaluations;
  if (absl::Status s = ReadMetrics(absl::StrCat(options.run_dir, "/metrics.jsonl"), options.limits,
                                   &metrics, &problems);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ReadEvents(absl::StrCat(options.run_dir, "/events.jsonl"), options.limits,
                                  &events, &problems);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ReadEvaluations(absl::StrCat(options.run_dir, "/evaluations.jsonl"),
                                       options.limits, &evaluations, &problems);
      !s.ok()) {
    return s;
  }
  PageInput input;
  input.run_dir = options.run_dir;
  input.metrics = &metrics;
  input.events = &events;
  input.evaluations = &evaluations;
  input.problems = &problems;
  input.generated_ms = NowMs();
  input.watch = options.watch;
  input.watch_interval_ms = options.watch_interval_ms;
  std::string page = RenderPage(input);
  if (stats != nullptr) {
    *stats = RenderStats();
    stats->page_bytes = page.size();
    stats->metrics_lines = metrics.lines;
    stats->problems = problems.total();
    for (const TimeChart& c : metrics.charts) {
      stats->series += static_cast<int64_t>(c.series.size());
      for (const ChartSeries& s : c.series) stats->points += static_cast<int64_t>(s.points.size());
    }
  }
  return page;
}

absl::Status WriteDashboard(const DashboardOptions& options, RenderStats* stats) {
  absl::StatusOr<std::string> page = RenderDashboard(options, stats);
  if (!page.ok()) return page.status();
  return WriteFileAtomically(options.OutputPath(), *page);
}

absl::Status WatchDashboard(const DashboardOptions& options, const Cancellation& stop) {
  if (absl::Status s = WriteDashboard(options, nullptr); !s.ok()) return s;
  while (!stop.WaitFor(absl::Milliseconds(options.watch_interval_ms))) {
    absl::Status s = WriteDashboard(options, nullptr);
    if (!s.ok()) LOG(WARNING) << "dashboard: rewriting " << options.OutputPath() << ": " << s;
  }
  return absl::OkStatus();
}

}  // namespace towerps::dashboard
