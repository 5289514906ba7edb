// The dashboard's inputs (dashboard/): a run directory's metrics.jsonl, events.jsonl
// and evaluations.jsonl, which any process (or anyone who can write the run directory)
// may have left in any state. Three parts of the input become the three files; the
// page must render (malformed lines are reported, never an error), and no byte of the
// files may end the page's data <script> early: the page holds exactly as many
// "</script" as the page of an empty run (the inlined scripts' own end tags).
#include <cstddef>
#include <cstdint>
#include <string>

#include "dashboard/dashboard.h"
#include "fuzz/fuzz_util.h"

namespace {

void Require(bool condition) {
  if (!condition) __builtin_trap();
}

int CountScriptEnds(const std::string& page) {
  int n = 0;
  for (size_t at = page.find("</script"); at != std::string::npos;
       at = page.find("</script", at + 1)) {
    ++n;
  }
  return n;
}

std::string Render(const towerps::fuzz::ScratchDir& dir) {
  towerps::dashboard::DashboardOptions options;
  options.run_dir = dir.path();
  // Small limits, so that the caps (series, points, problems, line length) are reached
  // within -max_len.
  options.limits.max_points_per_series = 8;
  options.limits.max_series = 6;
  options.limits.max_problems = 3;
  options.limits.max_line_bytes = 1024;
  options.limits.max_events = 4;
  options.limits.max_evaluations = 2;
  auto page = towerps::dashboard::RenderDashboard(options, nullptr);
  Require(page.ok());
  return *std::move(page);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const towerps::fuzz::ScratchDir& dir = towerps::fuzz::ScratchDir::Get();
  static const int kScriptEnds = [&] {
    dir.Clear();
    return CountScriptEnds(Render(dir));
  }();
  dir.Clear();
  const auto parts = towerps::fuzz::SplitParts(towerps::fuzz::AsView(data, size), 3);
  const char* names[] = {"metrics.jsonl", "events.jsonl", "evaluations.jsonl"};
  for (size_t i = 0; i < parts.size(); ++i) dir.Write(names[i], parts[i]);
  const std::string page = Render(dir);
  Require(CountScriptEnds(page) == kScriptEnds);
  return 0;
}
