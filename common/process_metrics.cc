#include "common/process_metrics.h"

#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file_util.h"
#include "glog/logging.h"

namespace towerps {

absl::StatusOr<int64_t> ParseStatmResidentBytes(absl::string_view statm, int64_t page_size) {
  std::vector<absl::string_view> fields =
      absl::StrSplit(statm, absl::ByAnyChar(" \n"), absl::SkipEmpty());
  int64_t pages = 0;
  // A resident page count beyond 2^40 pages is no real process: refuse it rather
  // than overflow the product.
  if (fields.size() < 2 || !absl::SimpleAtoi(fields[1], &pages) || pages < 0 ||
      pages > (int64_t{1} << 40) || page_size <= 0 || page_size > (int64_t{1} << 22)) {
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected /proc/self/statm contents: \"", statm.substr(0, 80), "\""));
  }
  return pages * page_size;
}

absl::StatusOr<int64_t> ResidentMemoryBytes() {
  absl::StatusOr<std::string> text = ReadFileToString("/proc/self/statm");
  if (!text.ok()) return text.status();
  return ParseStatmResidentBytes(*text, static_cast<int64_t>(::sysconf(_SC_PAGESIZE)));
}

void UpdateProcessMetrics(MetricsRegistry* registry) {
  absl::StatusOr<int64_t> rss = ResidentMemoryBytes();
  if (!rss.ok()) {
    LOG_FIRST_N(WARNING, 1) << "process metrics: " << rss.status();
    return;
  }
  registry->GetGauge(kResidentMemoryMetric)->Set(static_cast<double>(*rss));
}

}  // namespace towerps
