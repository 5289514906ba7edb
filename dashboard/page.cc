#include "dashboard/page.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace towerps::dashboard {

// Generated at build time from chart.min.js (libjs-chart.js), page.js and page.css.
extern const char kChartJs[];
extern const unsigned long kChartJsSize;
extern const char kPageJs[];
extern const unsigned long kPageJsSize;
extern const char kPageCss[];
extern const unsigned long kPageCssSize;

std::string RenderPage(const PageInput& input) {
  const std::string data = BuildPageJson(input);
  std::string page;
  page.reserve(kChartJsSize + kPageJsSize + kPageCssSize + data.size() + 2048);
  absl::StrAppend(&page, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
  if (input.watch) {
    int64_t seconds = std::max<int64_t>(1, (input.watch_interval_ms + 999) / 1000);
    absl::StrAppend(&page, "<meta http-equiv=\"refresh\" content=\"", seconds, "\">\n");
  }
  absl::StrAppend(&page, "<title>towerps dashboard: ", HtmlEscape(input.run_dir), "</title>\n");
  absl::StrAppend(&page, "<style>\n", absl::string_view(kPageCss, kPageCssSize), "</style>\n");
  // Errors of Chart.js and of the page script are collected for the self-check.
  absl::StrAppend(&page,
                  "<script>window.towerpsErrors = [];\n"
                  "window.onerror = function (message, source, line) {\n"
                  "  window.towerpsErrors.push(String(message) + ' (line ' + line + ')');\n"
                  "};</script>\n");
  absl::StrAppend(&page, "<script>\n", absl::string_view(kChartJs, kChartJsSize), "\n</script>\n");
  absl::StrAppend(
      &page,
      "</head>\n<body>\n<header id=\"header\"></header>\n<div id=\"main\"></div>\n"
      "<div id=\"selfcheck\"></div>\n<script id=\"run-data\" type=\"application/json\">",
      data, "</script>\n");
  absl::StrAppend(&page, "<script>\n", absl::string_view(kPageJs, kPageJsSize),
                  "</script>\n</body>\n</html>\n");
  return page;
}

}  // namespace towerps::dashboard
