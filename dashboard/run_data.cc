#include "dashboard/run_data.h"

#include "absl/strings/str_cat.h"

namespace towerps::dashboard {

void ProblemLog::Add(absl::string_view file, int64_t line, absl::string_view what) {
  ++total_;
  if (static_cast<int>(kept_.size()) >= max_kept_) return;
  kept_.push_back(line > 0 ? absl::StrCat(file, " line ", line, ": ", what)
                           : absl::StrCat(file, ": ", what));
}

}  // namespace towerps::dashboard
