// What the dashboard shows of a run, as read from its files: the time charts built from
// metrics.jsonl, the job's events, its evaluations, and the problems met on the way.
// Every container here is bounded by the readers' options, not by the input's size.
//
// Plain structs; thread-compatible.
#ifndef TOWERPS_DASHBOARD_RUN_DATA_H_
#define TOWERPS_DASHBOARD_RUN_DATA_H_

#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "dashboard/series.h"

namespace towerps::dashboard {

// Bounds of what the readers keep; memory stays within them whatever the input.
struct ReadLimits {
  // Points per series (pairwise merged beyond, min/max kept); >= 2.
  int max_points_per_series = 500;
  // Series over all charts (one per chart line); later ones are counted as dropped.
  int max_series = 256;
  // Problems listed on the page (all are counted).
  int max_problems = 20;
  // Longer lines are cut and reported; >= 1024.
  int64_t max_line_bytes = 1 << 20;
  // Checkpoints and marks kept (the newest).
  int max_events = 2000;
  // Evaluations kept (the newest).
  int max_evaluations = 50;
};

// Malformed input, reported on the page: the first `max_kept` messages and a count.
class ProblemLog {
 public:
  explicit ProblemLog(int max_kept) : max_kept_(max_kept) {}
  // Records "<file> line <line>: <what>" (line <= 0: no line number).
  void Add(absl::string_view file, int64_t line, absl::string_view what);
  int64_t total() const { return total_; }
  const std::vector<std::string>& kept() const { return kept_; }

 private:
  int max_kept_;
  int64_t total_ = 0;
  std::vector<std::string> kept_;
};

// One line of a time chart (e.g. "worker 1" of the loss chart).
struct ChartSeries {
  std::string label;
  std::vector<SeriesPoint> points;  // oldest first
  int64_t stride = 1;               // raw values per point (> 1: downsampled)
};

// A chart over the run's wall-clock time.
struct TimeChart {
  std::string id;            // stable name, e.g. "loss" (the self-check reports it)
  std::string title;         // shown above the chart
  std::string unit;          // of the y axis
  bool smoothed = false;     // the page adds an exponentially smoothed line of all series
  std::string empty_reason;  // shown instead of the chart when it has no points
  std::vector<ChartSeries> series;
};

// The summary of metrics.jsonl.
struct MetricsData {
  bool present = false;  // the file exists
  std::vector<TimeChart> charts;
  int64_t lines = 0;         // lines read (blank ones included)
  int64_t first_ts_ms = -1;  // earliest ts_ms of a good line, -1 none
  int64_t last_ts_ms = -1;
  std::vector<std::string> roles;             // distinct roles seen ("train": an embedded run)
  int64_t dropped_series = 0;                 // series past max_series, not kept
  std::vector<std::string> dropped_examples;  // the first few of them
  // Final values for the header, name -> value (e.g. "loss", "global_step").
  std::vector<std::pair<std::string, double>> finals;
};

// A checkpoint event.
struct CheckpointEvent {
  int64_t ts_ms = 0;
  int64_t step = 0;
  int64_t bytes = 0;
  double duration_ms = 0;
  bool incremental = false;
  bool ok = true;
  std::string dir;
  std::string error;
};

// A vertical mark on every time chart.
struct Mark {
  int64_t ts_ms = 0;
  std::string kind;   // "checkpoint", "dead", "replaced", "recovery", "phase"
  std::string label;  // e.g. "worker 1 dead: heartbeat timeout"
};

// The summary of events.jsonl.
struct EventsData {
  bool present = false;  // the file exists
  bool job_started = false;
  std::string job_id, config, dataset;
  int64_t servers = 0, workers = 0, planned_steps = 0, staleness = 0, start_step = 0;
  bool recovered = false;
  int64_t start_ms = -1;      // ts_ms of the last job_start, -1 none
  int64_t end_ms = -1;        // ts_ms of job_end, -1 none (still running)
  std::string phase, reason;  // the latest phase (job_end's when ended)
  int64_t final_step = -1;
  std::deque<CheckpointEvent> checkpoints;  // the newest max_events
  std::deque<Mark> marks;                   // the newest max_events
  int64_t dropped = 0;                      // events past those bounds
};

// One line of evaluations.jsonl.
struct Evaluation {
  int64_t ts_ms = 0;
  int64_t step = -1;
  std::string checkpoint, split;
  // recall@K, ndcg@K (model) and popularity_recall@K, popularity_ndcg@K, in file order.
  std::vector<std::pair<std::string, double>> metrics;
  // embedding_health (docs/metrics.md); quantiles are min p10 p25 p50 p75 p90 max,
  // empty when absent or null.
  bool has_health = false;
  double item_coverage = -1;
  double mean_cosine = 0;
  double collapse_threshold = -1;  // -1: not in the line
  bool collapse_warning = false;
  int64_t item_id_rows = -1;  // -1: no item_id table (or not in the line)
  std::vector<double> item_id_norm_quantiles;
  std::vector<double> user_id_norm_quantiles;
  std::vector<double> item_norm_quantiles;  // tower output, only when not L2-normalised
  std::vector<double> hist_edges;           // item_id_norm_histogram: 21
  std::vector<double> hist_counts;          // 20
};

struct EvaluationsData {
  bool present = false;
  std::deque<Evaluation> evaluations;  // the newest max_evaluations, oldest first
  int64_t dropped = 0;
};

}  // namespace towerps::dashboard

#endif  // TOWERPS_DASHBOARD_RUN_DATA_H_
