// Process-level metrics every towerps process exports, refreshed in one place:
// MetricsWriter calls UpdateProcessMetrics before each metrics.jsonl line and
// http::MetricsServer before each /metrics render, so both show the same series.
//
//   towerps_process_resident_memory_bytes (gauge): resident set size, from
//   /proc/self/statm (field 2, pages) times the page size.
//
// Thread-safe (the registry is; reads of /proc are independent).
#ifndef TOWERPS_COMMON_PROCESS_METRICS_H_
#define TOWERPS_COMMON_PROCESS_METRICS_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/metrics.h"

namespace towerps {

inline constexpr char kResidentMemoryMetric[] = "towerps_process_resident_memory_bytes";

// The resident bytes in the text of /proc/<pid>/statm ("size resident shared ...",
// in pages of `page_size` bytes). InvalidArgument for text that is not such a line.
absl::StatusOr<int64_t> ParseStatmResidentBytes(absl::string_view statm, int64_t page_size);

// This process's resident set size in bytes. Errors: reading /proc/self/statm
// (NotFound off Linux), InvalidArgument for unexpected contents.
absl::StatusOr<int64_t> ResidentMemoryBytes();

// Sets the process gauges of `registry` (registered on first use). A failed read
// keeps the previous value and is logged once per process.
void UpdateProcessMetrics(MetricsRegistry* registry);

}  // namespace towerps

#endif  // TOWERPS_COMMON_PROCESS_METRICS_H_
