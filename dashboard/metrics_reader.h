// Reads <run_dir>/metrics.jsonl (docs/metrics.md) in one streaming pass into the time
// charts of the dashboard. Memory is bounded by ReadLimits (points per series, series,
// line length), not by the file: a million-line file needs what a thousand-line one does.
//
// Each line is one flat JSON object with ts_ms, role and rank; the reader keeps only the
// keys a chart shows (unknown keys, nested values and strings are ignored) and turns
// them into series per process (loss of "worker 1"), rates of counters (examples/s,
// requests/s; a counter that goes down, a restarted process, starts over) and sums over
// processes (rows per table). A line that is not a JSON object, lacks ts_ms or role,
// or is cut by max_line_bytes is reported to the ProblemLog and skipped; a last line
// without its newline (a live run mid-write) is reported as truncated only if it does
// not parse.
//
// Thread-compatible.
#ifndef TOWERPS_DASHBOARD_METRICS_READER_H_
#define TOWERPS_DASHBOARD_METRICS_READER_H_

#include <string>

#include "absl/status/status.h"
#include "dashboard/run_data.h"

namespace towerps::dashboard {

// Reads `path` into *out (replaced) and reports malformed lines to *problems under the
// name "metrics.jsonl". An absent file is OK: out->present false, every chart empty.
// Errors: read errors, errno-mapped. Malformed content is never an error.
absl::Status ReadMetrics(const std::string& path, const ReadLimits& limits, MetricsData* out,
                         ProblemLog* problems);

}  // namespace towerps::dashboard

#endif  // TOWERPS_DASHBOARD_METRICS_READER_H_
