#include "models/lr_schedule.h"

#include <cmath>
#include <numbers>

namespace towerps::models {

absl::Status LrScheduleOptions::Validate() const {
  if (!(base_lr > 0 && std::isfinite(base_lr))) {
    return absl::InvalidArgumentError("lr schedule: base_lr must be > 0");
  }
  if (warmup_steps < 0) return absl::InvalidArgumentError("lr schedule: warmup_steps < 0");
  if (decay_steps < 0) return absl::InvalidArgumentError("lr schedule: decay_steps < 0");
  if (!(min_lr >= 0 && min_lr <= base_lr)) {
    return absl::InvalidArgumentError("lr schedule: min_lr must be in [0, base_lr]");
  }
  if (!(cycle_mult >= 1 && std::isfinite(cycle_mult))) {
    return absl::InvalidArgumentError("lr schedule: cycle_mult must be >= 1");
  }
  return absl::OkStatus();
}

absl::StatusOr<LrSchedule> LrSchedule::Create(const LrScheduleOptions& options) {
  absl::Status status = options.Validate();
  if (!status.ok()) return status;
  return LrSchedule(options);
}

double LrSchedule::LrAt(int64_t step) const {
  const LrScheduleOptions& o = options_;
  if (step < 0) step = 0;
  if (step < o.warmup_steps) {
    return o.base_lr * static_cast<double>(step + 1) / static_cast<double>(o.warmup_steps);
  }
  if (o.decay_steps == 0) return o.base_lr;
  double t = static_cast<double>(step - o.warmup_steps);
  double cycle = static_cast<double>(o.decay_steps);
  if (!o.restarts) {
    if (t >= cycle) return o.min_lr;
  } else if (o.cycle_mult == 1.0) {
    t = std::fmod(t, cycle);
  } else {
    // Cycles grow geometrically; walk them (log-many iterations).
    while (t >= cycle) {
      t -= cycle;
      cycle *= o.cycle_mult;
    }
  }
  return o.min_lr +
         (o.base_lr - o.min_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * t / cycle));
}

}  // namespace towerps::models
