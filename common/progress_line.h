// The one-line training progress report that `towerps train` prints every few
// seconds and `towerps ctl status --watch` (and deploy/local.sh through it) prints
// for a cluster job, so both read the same:
//   step    120/4000  loss 4.1234     3250 examples/s  lr x0.850  ETA  118s
// Thread-safe (a pure function).
#ifndef TOWERPS_COMMON_PROGRESS_LINE_H_
#define TOWERPS_COMMON_PROGRESS_LINE_H_

#include <cstdint>
#include <limits>
#include <string>

namespace towerps {

struct ProgressFigures {
  int64_t step = 0;         // global steps done
  int64_t total_steps = 0;  // planned; <= 0: unknown ("?")
  // Mean training loss of the recent steps; NaN: unknown ("-").
  double loss = std::numeric_limits<double>::quiet_NaN();
  double examples_per_s = 0;
  double lr_scale = 0;  // the LR schedule's multiplier
  double eta_s = -1;    // seconds to total_steps; < 0 or non-finite: unknown ("?")
};

// The line, without a trailing newline.
std::string FormatProgressLine(const ProgressFigures& figures);

}  // namespace towerps

#endif  // TOWERPS_COMMON_PROGRESS_LINE_H_
