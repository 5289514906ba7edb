// The run data of the page as one JSON object (the page's script renders it) and the
// escaping that keeps hostile strings inert inside the page.
//
// Thread-safe (pure functions).
#ifndef TOWERPS_DASHBOARD_PAGE_DATA_H_
#define TOWERPS_DASHBOARD_PAGE_DATA_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "dashboard/run_data.h"

namespace towerps::dashboard {

// Everything one rendering shows. Borrowed pointers must outlive the call.
struct PageInput {
  std::string run_dir;
  const MetricsData* metrics = nullptr;
  const EventsData* events = nullptr;
  const EvaluationsData* evaluations = nullptr;
  const ProblemLog* problems = nullptr;
  int64_t generated_ms = 0;  // wall clock of the rendering
  bool watch = false;        // the page reloads itself every watch_interval_ms
  int64_t watch_interval_ms = 0;
};

// The JSON object the page's script reads (schema: the comment in page_data.cc). Times
// on the charts are seconds since the run's start. Every '<' is written as \u003c, so
// the text can sit in a <script> element whatever the strings hold ("</script>",
// "<!--").
std::string BuildPageJson(const PageInput& input);

// `s` with & < > " ' as character references.
std::string HtmlEscape(absl::string_view s);

}  // namespace towerps::dashboard

#endif  // TOWERPS_DASHBOARD_PAGE_DATA_H_
