#include "common/progress_line.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace towerps {

std::string FormatProgressLine(const ProgressFigures& f) {
  const std::string total = f.total_steps > 0 ? absl::StrCat(f.total_steps) : "?";
  const std::string loss = std::isfinite(f.loss) ? absl::StrFormat("%.4f", f.loss) : "-";
  const std::string eta =
      std::isfinite(f.eta_s) && f.eta_s >= 0 ? absl::StrFormat("%4.0fs", f.eta_s) : "   ?";
  const double rate = std::isfinite(f.examples_per_s) ? f.examples_per_s : 0;
  return absl::StrFormat("step %6d/%s  loss %s  %8.0f examples/s  lr x%.3f  ETA %s", f.step, total,
                         loss, rate, f.lr_scale, eta);
}

}  // namespace towerps
