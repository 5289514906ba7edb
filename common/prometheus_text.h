// Renders a MetricsRegistry in the Prometheus text exposition format, version 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/), for the /metrics
// endpoint (http/metrics_server.h). Pure functions of their inputs; thread-safe.
//
// How registry names become Prometheus series:
// - every series carries the labels role and rank (of the process);
// - towerps_sparse_emb_<table>_<what> (sparse_emb/embedding_table.cc) becomes
//   towerps_sparse_emb_<what>{table="<table>"} for <what> in admitted_total,
//   rejected_total, evicted_total, rows, memory_bytes;
// - counters end in _total (appended when missing);
// - base units: a name ending in _us or _ms is renamed to _seconds and its values
//   (sum, bucket bounds; gauges too) are scaled to seconds;
// - a histogram exports <name>_bucket{le="..."} at 16 powers of 4 of its recorded unit
//   (exact: they are bucket edges in common/metrics.h), from 2^0 for a _us/_ms one
//   (1 us .. 18 min) and from 2^-10 otherwise, and +Inf, then <name>_sum and
//   <name>_count, all counted since the process started;
// - characters outside [a-zA-Z0-9_:] in a name become '_'.
// Every family gets one "# HELP" and one "# TYPE" line before its samples.
#ifndef TOWERPS_COMMON_PROMETHEUS_TEXT_H_
#define TOWERPS_COMMON_PROMETHEUS_TEXT_H_

#include <string>

#include "absl/strings/string_view.h"
#include "common/metrics.h"

namespace towerps {

// The Content-Type of the format rendered here.
inline constexpr char kPrometheusTextContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// Labels every series of one process carries.
struct PrometheusTarget {
  std::string role;  // scheduler, ps, worker, serve
  int rank = 0;      // within the role
};

// The whole exposition of `registry` (reads counters, gauges and histogram totals;
// does not reset anything, so the JSON-lines writer is unaffected).
std::string RenderPrometheusText(MetricsRegistry* registry, const PrometheusTarget& target);

// A label value escaped for the text format: backslash, double quote and newline
// become \\, \" and \n.
std::string EscapePrometheusLabelValue(absl::string_view value);

// A sample value as the format spells it: shortest round-trip decimal, "+Inf",
// "-Inf", "NaN".
std::string FormatPrometheusValue(double value);

}  // namespace towerps

#endif  // TOWERPS_COMMON_PROMETHEUS_TEXT_H_
