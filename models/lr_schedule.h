// Learning-rate schedule: linear warmup, then cosine annealing to a floor,
// optionally restarting (SGDR). A pure function of the step, so a scheduler
// can broadcast the step and every node derives the same rate.
//
//   step < warmup:  lr = base_lr * (step + 1) / warmup_steps
//   then, with t = step - warmup_steps and a cycle of length T that t is in:
//     lr = min_lr + (base_lr - min_lr) * (1 + cos(pi * t_in_cycle / T)) / 2
//   no restarts: one cycle of decay_steps, min_lr after it;
//   restarts: cycles of decay_steps, decay_steps * cycle_mult, ... each
//   starting again at base_lr.
//   decay_steps == 0: base_lr after warmup (constant).
//
// Thread-safe (immutable after Create).
#ifndef TOWERPS_MODELS_LR_SCHEDULE_H_
#define TOWERPS_MODELS_LR_SCHEDULE_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace towerps::models {

struct LrScheduleOptions {
  // Peak learning rate (> 0).
  double base_lr = 1e-3;
  // Linear warmup length in steps (>= 0).
  int64_t warmup_steps = 0;
  // Length of the (first) cosine cycle in steps (>= 0; 0 = constant).
  int64_t decay_steps = 0;
  // Floor of the cosine (0 <= min_lr <= base_lr).
  double min_lr = 0.0;
  // Restart the cosine at base_lr after each cycle (SGDR).
  bool restarts = false;
  // Each cycle is this many times longer than the previous (>= 1).
  double cycle_mult = 1.0;

  absl::Status Validate() const;
};

class LrSchedule {
 public:
  // InvalidArgument when options do not validate.
  static absl::StatusOr<LrSchedule> Create(const LrScheduleOptions& options);

  // The learning rate of step `step` (0-based; negative reads as 0).
  double LrAt(int64_t step) const;

  const LrScheduleOptions& options() const { return options_; }

 private:
  explicit LrSchedule(const LrScheduleOptions& options) : options_(options) {}
  LrScheduleOptions options_;
};

}  // namespace towerps::models

#endif  // TOWERPS_MODELS_LR_SCHEDULE_H_
