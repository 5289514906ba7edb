#include "scheduler/job_progress.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "scheduler/job_state.h"

namespace towerps::scheduler {
namespace {

// Reports closer together than this share one sample (a synchronous job's workers
// report every step): the window holds at most window / spacing + 2 samples.
constexpr int64_t kSampleSpacingMs = 100;

int64_t SaturatingAdd(int64_t a, int64_t b) {
  return a > std::numeric_limits<int64_t>::max() - b ? std::numeric_limits<int64_t>::max() : a + b;
}

}  // namespace

JobProgress::JobProgress(int num_workers, int64_t window_ms)
    : window_ms_(std::max<int64_t>(window_ms, 1)),
      workers_(static_cast<size_t>(std::max(num_workers, 0)),
               WorkerFigures{std::numeric_limits<double>::quiet_NaN()}) {}

void JobProgress::Report(int rank, double loss, int64_t examples, int64_t global_step,
                         int64_t now_ms) {
  if (rank < 0 || rank >= static_cast<int>(workers_.size())) return;
  WorkerFigures& w = workers_[rank];
  if (std::isfinite(loss) && loss >= 0 && loss <= kMaxReportedLoss) w.loss = loss;
  if (examples >= 0 && examples <= kMaxReportedCount) {
    if (w.restarted) {
      w.base = SaturatingAdd(w.base, w.examples);
      w.examples = examples;
      w.restarted = false;
    } else if (examples >= w.examples) {
      w.examples = examples;
    }
  }
  // A rollback moves the global step back: the rates start over.
  if (!samples_.empty() &&
      (global_step < samples_.back().global_step || now_ms < samples_.back().ms)) {
    samples_.clear();
  }
  const Sample sample{now_ms, global_step, total_examples()};
  if (!samples_.empty() &&
      (samples_.back().ms == now_ms ||
       (samples_.size() >= 2 && now_ms - samples_[samples_.size() - 2].ms < kSampleSpacingMs))) {
    samples_.back() = sample;
  } else {
    samples_.push_back(sample);
  }
  while (samples_.front().ms < now_ms - window_ms_) samples_.pop_front();
}

void JobProgress::WorkerRestarted(int rank) {
  if (rank < 0 || rank >= static_cast<int>(workers_.size())) return;
  workers_[rank].restarted = true;
}

double JobProgress::WorkerLoss(int rank) const {
  if (rank < 0 || rank >= static_cast<int>(workers_.size())) {
    return std::numeric_limits<double>::quiet_NaN();
  }
  return workers_[rank].loss;
}

int64_t JobProgress::WorkerExamples(int rank) const {
  if (rank < 0 || rank >= static_cast<int>(workers_.size())) return 0;
  return SaturatingAdd(workers_[rank].base, workers_[rank].examples);
}

double JobProgress::MeanLoss(const std::vector<bool>& counted) const {
  double sum = 0;
  int n = 0;
  for (size_t w = 0; w < workers_.size() && w < counted.size(); ++w) {
    if (!counted[w] || std::isnan(workers_[w].loss)) continue;
    sum += workers_[w].loss;
    ++n;
  }
  return n > 0 ? sum / n : std::numeric_limits<double>::quiet_NaN();
}

int64_t JobProgress::total_examples() const {
  int64_t total = 0;
  for (size_t w = 0; w < workers_.size(); ++w) {
    total = SaturatingAdd(total, WorkerExamples(static_cast<int>(w)));
  }
  return total;
}

JobRates JobProgress::RatesAt(int64_t now_ms) const {
  JobRates rates;
  auto first = std::find_if(samples_.begin(), samples_.end(),
                            [&](const Sample& s) { return s.ms >= now_ms - window_ms_; });
  if (first == samples_.end()) return rates;
  const Sample& last = samples_.back();
  if (last.ms <= first->ms) return rates;
  const double seconds = static_cast<double>(last.ms - first->ms) / 1000.0;
  rates.steps_per_s = static_cast<double>(last.global_step - first->global_step) / seconds;
  rates.examples_per_s = static_cast<double>(last.examples - first->examples) / seconds;
  return rates;
}

double EtaSeconds(int64_t planned_steps, int64_t global_step, double steps_per_s) {
  if (planned_steps <= 0) return -1;
  if (global_step >= planned_steps) return 0;
  if (!(steps_per_s > 0)) return -1;
  return static_cast<double>(planned_steps - global_step) / steps_per_s;
}

}  // namespace towerps::scheduler
