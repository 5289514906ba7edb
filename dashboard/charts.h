// The dashboard's time charts and which metrics.jsonl keys feed them (docs/dashboard.md
// lists them). Thread-safe (constant tables and pure functions).
#ifndef TOWERPS_DASHBOARD_CHARTS_H_
#define TOWERPS_DASHBOARD_CHARTS_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace towerps::dashboard {

struct ChartDef {
  const char* id;
  const char* title;
  const char* unit;
  bool smoothed;             // the page adds a smoothed line over all series
  const char* empty_reason;  // shown when no line of the run had its keys
};

// Every time chart, in page order.
const std::vector<ChartDef>& ChartDefs();

// How one metrics.jsonl key becomes points.
enum class Transform {
  kNone,   // not shown
  kValue,  // the value, per process
  kRate,   // per-second rate of a counter, per process
  kSum,    // the sum over processes of each one's latest value (rows of a table)
  kCount,  // a histogram's _count: quantiles of an interval with no values are skipped
};

struct Binding {
  Transform transform = Transform::kNone;
  int chart = -1;  // index into ChartDefs()
  // kValue/kRate: appended to the process ("worker 1 p99"); kSum: the series label;
  // kCount: the histogram's name.
  std::string label;
  double scale = 1;       // applied to the value (us -> ms, bytes -> MiB)
  std::string count_of;   // quantiles: the histogram whose _count gates them
  // Skipped in a line where this key is 0 (a worker's loss gauge reads 0 before its
  // first step: the line's step gauge is still 0). "": never.
  std::string zero_gate;
  std::string only_role;  // taken only from lines of this role ("": any)
};

// The binding of `key` (kNone for keys no chart shows). Table names are taken from
// towerps_sparse_emb_<table>_{rows,admitted_total,evicted_total}.
Binding Classify(absl::string_view key);

}  // namespace towerps::dashboard

#endif  // TOWERPS_DASHBOARD_CHARTS_H_
