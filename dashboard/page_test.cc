#include "dashboard/page.h"

#include <chrono>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/test_dir.h"
#include "dashboard/dashboard.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace towerps::dashboard {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The JSON blob of a page.
nlohmann::json PageData(const std::string& page) {
  const std::string open = "<script id=\"run-data\" type=\"application/json\">";
  size_t begin = page.find(open);
  EXPECT_NE(begin, std::string::npos);
  begin += open.size();
  size_t end = page.find("</script>", begin);
  return nlohmann::json::parse(page.substr(begin, end - begin), nullptr, false);
}

TEST(PageTest, HostileStringsCannotLeaveTheScript) {
  std::string dir = FreshTestDir("page_hostile", true);
  const std::string evil = "</script><script>alert(1)</script><!--";
  ASSERT_TRUE(WriteFileAtomically(
                  dir + "/metrics.jsonl",
                  absl::StrCat("{\"ts_ms\":1000,\"role\":\"", "</script><b>", "\",\"rank\":0,",
                               "\"towerps_sparse_emb_</script>x_rows\":5}\n"))
                  .ok());
  ASSERT_TRUE(WriteFileAtomically(
                  dir + "/events.jsonl",
                  absl::StrCat("{\"ts_ms\":900,\"event\":\"job_start\",\"job_id\":\"", evil,
                               "\",\"config\":\"<img src=x onerror=alert(1)>\"}\n",
                               "{\"ts_ms\":950,\"event\":\"node_dead\",\"role\":\"ps\",\"rank\":0,",
                               "\"reason\":\"", evil, "\"}\n"))
                  .ok());
  DashboardOptions options;
  options.run_dir = dir;
  absl::StatusOr<std::string> page = RenderDashboard(options, nullptr);
  ASSERT_TRUE(page.ok()) << page.status();
  // Chart.js and the page script hold no "</script"; the data none either.
  size_t data_at = page->find("<script id=\"run-data\"");
  ASSERT_NE(data_at, std::string::npos);
  size_t data_end = page->find("</script>", data_at);
  std::string blob = page->substr(data_at, data_end - data_at);
  EXPECT_THAT(blob.substr(1), Not(HasSubstr("<")));
  EXPECT_THAT(*page, Not(HasSubstr("<script>alert")));
  EXPECT_THAT(*page, Not(HasSubstr("<img")));
  nlohmann::json data = PageData(*page);
  ASSERT_FALSE(data.is_discarded());
  EXPECT_EQ(data["header"]["job_id"], evil) << "the string itself survives, escaped";
  EXPECT_EQ(data["marks"][0]["label"], "ps 0 dead: " + evil);
}

TEST(PageTest, TitleIsHtmlEscapedAndWatchAddsRefresh) {
  std::string dir = FreshTestDir("page_<b>&", true);
  DashboardOptions options;
  options.run_dir = dir;
  absl::StatusOr<std::string> page = RenderDashboard(options, nullptr);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(*page, HasSubstr("page_&lt;b&gt;&amp;"));
  EXPECT_THAT(*page, Not(HasSubstr("http-equiv=\"refresh\"")));
  EXPECT_THAT(*page, HasSubstr("Chart.js v3"));
  EXPECT_THAT(*page, HasSubstr("id=\"selfcheck\""));
  options.watch = true;
  options.watch_interval_ms = 2000;
  page = RenderDashboard(options, nullptr);
  ASSERT_TRUE(page.ok());
  EXPECT_THAT(*page, HasSubstr("<meta http-equiv=\"refresh\" content=\"2\">"));
}

TEST(PageTest, DownsampledSeriesCarryTheirRange) {
  std::string dir = FreshTestDir("page_downsampled", true);
  std::string text;
  for (int i = 0; i < 3000; ++i) {
    absl::StrAppend(&text, "{\"ts_ms\":", 100000 + i * 100, ",\"role\":\"worker\",\"rank\":0,",
                    "\"towerps_worker_loss\":", i == 2000 ? 50 : 1, "}\n");
  }
  ASSERT_TRUE(WriteFileAtomically(dir + "/metrics.jsonl", text).ok());
  DashboardOptions options;
  options.run_dir = dir;
  options.limits.max_points_per_series = 100;
  RenderStats stats;
  absl::StatusOr<std::string> page = RenderDashboard(options, &stats);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(stats.metrics_lines, 3000);
  EXPECT_EQ(stats.series, 1);
  EXPECT_LE(stats.points, 100);
  nlohmann::json data = PageData(*page);
  const nlohmann::json& s = data["charts"][0]["series"][0];
  EXPECT_EQ(s["label"], "worker 0");
  EXPECT_GT(s["stride"].get<int>(), 1);
  EXPECT_EQ(s["x"].size(), s["hi"].size());
  double max = 0;
  for (const auto& v : s["hi"]) max = std::max(max, v.get<double>());
  EXPECT_EQ(max, 50);
  EXPECT_EQ(s["x"][0].get<double>(), s["x"][0].get<double>());
  EXPECT_NEAR(data["span_s"].get<double>(), 299.9, 1e-6);
}

TEST(DashboardOptionsTest, Validate) {
  DashboardOptions options;
  EXPECT_FALSE(options.Validate().ok());
  options.run_dir = FreshTestDir("dashboard_options", true);
  EXPECT_TRUE(options.Validate().ok());
  EXPECT_EQ(options.OutputPath(), options.run_dir + "/dashboard.html");
  options.watch_interval_ms = 10;
  EXPECT_FALSE(options.Validate().ok());
  options.watch_interval_ms = 5000;
  options.run_dir += "/absent";
  EXPECT_FALSE(options.Validate().ok());
}

TEST(DashboardTest, WriteIsAtomicAndReadable) {
  std::string dir = FreshTestDir("dashboard_write", true);
  DashboardOptions options;
  options.run_dir = dir;
  options.output = dir + "/out.html";
  ASSERT_TRUE(WriteDashboard(options, nullptr).ok());
  absl::StatusOr<std::string> written = ReadFileToString(options.output);
  ASSERT_TRUE(written.ok());
  EXPECT_THAT(*written, HasSubstr("</html>"));
}

TEST(DashboardTest, WatchRewritesUntilCancelled) {
  std::string dir = FreshTestDir("dashboard_watch", true);
  DashboardOptions options;
  options.run_dir = dir;
  options.watch = true;
  options.watch_interval_ms = 200;
  Cancellation stop;
  absl::Status result = absl::UnknownError("not run");
  std::thread watcher([&] { result = WatchDashboard(options, stop); });
  const std::string page = options.OutputPath();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  // A metrics line written after the first page shows up in a later one.
  while (!PathExists(page) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(WriteFileAtomically(dir + "/metrics.jsonl",
                                  "{\"ts_ms\":1000,\"role\":\"train\",\"rank\":0,"
                                  "\"towerps_train_loss\":0.5}\n")
                  .ok());
  bool updated = false;
  while (!updated && std::chrono::steady_clock::now() < deadline) {
    absl::StatusOr<std::string> text = ReadFileToString(page);
    updated = text.ok() && text->find("\"metrics\":true") != std::string::npos;
    if (!updated) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  stop.Cancel(absl::CancelledError("test"));
  watcher.join();
  EXPECT_TRUE(updated) << "the page was not rewritten with the new metrics";
  EXPECT_TRUE(result.ok()) << result;
  absl::StatusOr<std::string> text = ReadFileToString(page);
  ASSERT_TRUE(text.ok());
  EXPECT_THAT(*text, HasSubstr("http-equiv=\"refresh\""));
}

}  // namespace
}  // namespace towerps::dashboard
