// Reads <run_dir>/events.jsonl (the scheduler's job events) and
// <run_dir>/evaluations.jsonl (one line per `towerps evaluate --run_dir`), formats in
// docs/metrics.md. Streaming and bounded by ReadLimits: the newest max_events
// checkpoints and marks, the newest max_evaluations evaluations, strings cut to a few
// hundred bytes. Unknown events and keys are ignored; a line that is not a JSON object,
// or whose known keys have the wrong type, is reported to the ProblemLog and skipped.
//
// Thread-compatible.
#ifndef TOWERPS_DASHBOARD_EVENTS_READER_H_
#define TOWERPS_DASHBOARD_EVENTS_READER_H_

#include <string>

#include "absl/status/status.h"
#include "dashboard/run_data.h"

namespace towerps::dashboard {

// Reads `path` into *out (replaced). A missing file is OK (out->present false).
// Errors: read errors, errno-mapped. Malformed lines go to *problems.
absl::Status ReadEvents(const std::string& path, const ReadLimits& limits, EventsData* out,
                        ProblemLog* problems);

// Same for evaluations.jsonl.
absl::Status ReadEvaluations(const std::string& path, const ReadLimits& limits,
                             EvaluationsData* out, ProblemLog* problems);

}  // namespace towerps::dashboard

#endif  // TOWERPS_DASHBOARD_EVENTS_READER_H_
