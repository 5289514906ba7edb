// The figures `towerps ctl status` shows about a job's training (docs/distributed.md,
// "Watching a job"): each worker's latest loss and finished examples, from the
// ClockStats its Clock requests carry, and the job's step and example rates over a
// sliding window of those reports. Time is what the caller passes (the scheduler's
// injected Clock), so tests are deterministic.
//
// Every report is hostile input: a non-finite or out-of-range loss is ignored (the
// worker keeps its previous one); an examples count that is negative, beyond
// kMaxReportedCount or lower than the worker's previous one is ignored, except
// after WorkerRestarted (a new process counts from 0): the old process's count
// becomes the rank's base, so a worker's total and the job's stay monotone.
//
// Thread-compatible (the scheduler calls it under its mutex).
#ifndef TOWERPS_SCHEDULER_JOB_PROGRESS_H_
#define TOWERPS_SCHEDULER_JOB_PROGRESS_H_

#include <cstdint>
#include <deque>
#include <vector>

namespace towerps::scheduler {

// The largest loss a report may carry; larger ones are ignored (no training loss of
// this project's models comes near it, and the mean stays meaningful).
inline constexpr double kMaxReportedLoss = 1e6;

struct JobRates {
  double steps_per_s = 0;     // global steps; 0: unknown
  double examples_per_s = 0;  // examples over all workers; 0: unknown
};

class JobProgress {
 public:
  // `window_ms` (> 0): the span of reports the rates are computed over.
  explicit JobProgress(int num_workers, int64_t window_ms = 10000);

  // Worker `rank` (in range, else ignored) reported `loss` (NaN: none since its
  // previous report) and `examples` (its process's total) at `now_ms`, when the job's
  // global step was `global_step`.
  void Report(int rank, double loss, int64_t examples, int64_t global_step, int64_t now_ms);
  // A new process took worker rank `rank`: its count starts again.
  void WorkerRestarted(int rank);

  // The worker's latest accepted loss (NaN: none) and its examples (all its
  // processes). Out-of-range ranks: NaN and 0.
  double WorkerLoss(int rank) const;
  int64_t WorkerExamples(int rank) const;
  // The mean of the latest losses of the workers with counted[rank] (NaN: none).
  double MeanLoss(const std::vector<bool>& counted) const;
  int64_t total_examples() const;

  // The rates over the reports of the last window_ms before `now_ms` (the first and
  // last of them; 0 with fewer than two, or none in the window).
  JobRates RatesAt(int64_t now_ms) const;

 private:
  struct WorkerFigures {
    double loss;             // NaN: none
    int64_t examples = 0;    // the current process's count
    int64_t base = 0;        // the rank's earlier processes' counts
    bool restarted = false;  // the next report may be lower than `examples`
  };
  struct Sample {
    int64_t ms;
    int64_t global_step;
    int64_t examples;
  };

  const int64_t window_ms_;
  std::vector<WorkerFigures> workers_;
  std::deque<Sample> samples_;  // oldest first; at most one per kSampleSpacingMs
};

// Seconds until `planned_steps` at `steps_per_s` from `global_step` (0 once reached);
// -1 when unknown (no plan or no rate).
double EtaSeconds(int64_t planned_steps, int64_t global_step, double steps_per_s);

}  // namespace towerps::scheduler

#endif  // TOWERPS_SCHEDULER_JOB_PROGRESS_H_
