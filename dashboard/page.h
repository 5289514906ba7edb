// The dashboard page: one self-contained HTML document (Chart.js, the page script and
// its style inlined; no network), with the run data as one JSON blob.
//
// Thread-safe (pure function).
#ifndef TOWERPS_DASHBOARD_PAGE_H_
#define TOWERPS_DASHBOARD_PAGE_H_

#include <string>

#include "dashboard/page_data.h"

namespace towerps::dashboard {

// The whole page. With input.watch it carries a meta refresh of watch_interval_ms.
std::string RenderPage(const PageInput& input);

}  // namespace towerps::dashboard

#endif  // TOWERPS_DASHBOARD_PAGE_H_
