#include "dashboard/metrics_reader.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/test_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace towerps::dashboard {
namespace {

using ::testing::HasSubstr;

const TimeChart& Chart(const MetricsData& data, const std::string& id) {
  for (const TimeChart& c : data.charts) {
    if (c.id == id) return c;
  }
  static const TimeChart kNone;
  ADD_FAILURE() << "no chart " << id;
  return kNone;
}

const ChartSeries* Find(const TimeChart& chart, const std::string& label) {
  for (const ChartSeries& s : chart.series) {
    if (s.label == label) return &s;
  }
  return nullptr;
}

class MetricsReaderTest : public ::testing::Test {
 protected:
  MetricsData Read(const std::string& text, ReadLimits limits = ReadLimits()) {
    std::string dir = FreshTestDir("metrics_reader", true);
    path_ = dir + "/metrics.jsonl";
    EXPECT_TRUE(WriteFileAtomically(path_, text).ok());
    MetricsData data;
    EXPECT_TRUE(ReadMetrics(path_, limits, &data, &problems_).ok());
    return data;
  }
  std::string path_;
  ProblemLog problems_{20};
};

TEST_F(MetricsReaderTest, SeriesPerProcessRatesQuantilesAndTableSums) {
  std::string text;
  for (int i = 0; i < 5; ++i) {
    int64_t t = 1000000 + i * 1000;
    absl::StrAppend(&text, "{\"ts_ms\":", t, ",\"role\":\"worker\",\"rank\":1,",
                    "\"towerps_worker_loss\":", 5 - i,
                    ",\"towerps_worker_examples_total\":", i * 512,
                    ",\"towerps_worker_pull_latency_us_count\":", i == 2 ? 0 : 3,
                    ",\"towerps_worker_pull_latency_us_p50\":", i == 2 ? 0 : 2000,
                    ",\"unknown_key\":7,\"towerps_unknown_metric\":1,\"nested\":{\"a\":[1,2]}}\n");
    for (int rank = 0; rank < 2; ++rank) {
      absl::StrAppend(&text, "{\"ts_ms\":", t + 1, ",\"role\":\"ps\",\"rank\":", rank,
                      ",\"towerps_sparse_emb_item_id_rows\":", 100 * (i + 1),
                      ",\"towerps_net_requests_total\":", i * 10, "}\n");
    }
  }
  MetricsData data = Read(text);
  EXPECT_EQ(problems_.total(), 0) << (problems_.kept().empty() ? "" : problems_.kept()[0]);
  EXPECT_EQ(data.lines, 15);
  EXPECT_EQ(data.first_ts_ms, 1000000);
  EXPECT_EQ(data.roles, (std::vector<std::string>{"ps", "worker"}));
  const ChartSeries* loss = Find(Chart(data, "loss"), "worker 1");
  ASSERT_NE(loss, nullptr);
  ASSERT_EQ(loss->points.size(), 5u);
  EXPECT_EQ(loss->points[4].mean(), 1);
  const ChartSeries* rate = Find(Chart(data, "examples_per_s"), "worker 1");
  ASSERT_NE(rate, nullptr);
  ASSERT_EQ(rate->points.size(), 4u);  // a rate needs two values
  EXPECT_DOUBLE_EQ(rate->points[0].mean(), 512);
  const ChartSeries* pull = Find(Chart(data, "pull_latency"), "worker 1 p50");
  ASSERT_NE(pull, nullptr);
  EXPECT_EQ(pull->points.size(), 4u) << "the interval with _count 0 is skipped";
  EXPECT_DOUBLE_EQ(pull->points[0].mean(), 2);  // microseconds shown as ms
  const ChartSeries* rows = Find(Chart(data, "table_rows"), "item_id");
  ASSERT_NE(rows, nullptr);
  EXPECT_EQ(rows->points.back().mean(), 1000) << "the sum over both servers";
  EXPECT_NE(Find(Chart(data, "server_requests"), "ps 0 requests"), nullptr);
  EXPECT_EQ(Find(Chart(data, "server_requests"), "worker 1 requests"), nullptr);
  EXPECT_TRUE(Chart(data, "memory").series.empty());
  EXPECT_EQ(data.charts.size(), 12u);
}

// A worker reports its loss gauge (0) before its first step: those points are not
// drawn; a line without the step gauge is kept, and so is train's after its step 0.
TEST_F(MetricsReaderTest, LossBeforeTheFirstStepIsSkipped) {
  std::string text;
  const int steps[] = {0, 0, 2, 5};
  const double losses[] = {0, 7.5, 7.4, 7.1};
  for (int i = 0; i < 4; ++i) {
    absl::StrAppend(&text, "{\"ts_ms\":", 1000 + i * 100, ",\"role\":\"worker\",\"rank\":0,",
                    "\"towerps_worker_global_step\":", steps[i],
                    ",\"towerps_worker_loss\":", losses[i], "}\n");
    absl::StrAppend(&text, "{\"ts_ms\":", 1000 + i * 100, ",\"role\":\"train\",\"rank\":0,",
                    "\"towerps_train_step\":", steps[i], ",\"towerps_train_loss\":", losses[i],
                    "}\n");
  }
  absl::StrAppend(&text, "{\"ts_ms\":2000,\"role\":\"worker\",\"rank\":1,",
                  "\"towerps_worker_loss\":3}\n");
  MetricsData data = Read(text);
  EXPECT_EQ(problems_.total(), 0);
  for (const char* label : {"worker 0", "train 0"}) {
    const ChartSeries* loss = Find(Chart(data, "loss"), label);
    ASSERT_NE(loss, nullptr) << label;
    ASSERT_EQ(loss->points.size(), 2u) << label << ": the two lines at step 0 are skipped";
    EXPECT_DOUBLE_EQ(loss->points[0].mean(), 7.4) << label;
  }
  const ChartSeries* ungated = Find(Chart(data, "loss"), "worker 1");
  ASSERT_NE(ungated, nullptr) << "no step gauge in the line: kept";
  EXPECT_EQ(ungated->points.size(), 1u);
  // The step chart itself still starts at 0.
  const ChartSeries* step = Find(Chart(data, "global_step"), "train 0");
  ASSERT_NE(step, nullptr);
  EXPECT_EQ(step->points.size(), 4u);
}

TEST_F(MetricsReaderTest, MalformedLinesAreReportedWithTheirNumbers) {
  std::string good = "{\"ts_ms\":1000,\"role\":\"train\",\"rank\":0,\"towerps_train_loss\":1}\n";
  std::string text = good + "not json\n" + "[1,2]\n" + "\"a string\"\n" + "{\"role\":\"x\"}\n" +
                     "{\"ts_ms\":-5,\"role\":\"x\"}\n" + "{\"ts_ms\":2000}\n" + "\n" + good +
                     "{\"ts_ms\":3000,\"role\":\"train\",\"rank\":0,\"towerps_tr";
  MetricsData data = Read(text);
  EXPECT_EQ(problems_.total(), 7);
  ASSERT_EQ(problems_.kept().size(), 7u);
  EXPECT_THAT(problems_.kept()[0], HasSubstr("metrics.jsonl line 2: not valid JSON"));
  EXPECT_THAT(problems_.kept()[1], HasSubstr("line 3: not a JSON object"));
  EXPECT_THAT(problems_.kept()[2], HasSubstr("line 4: not a JSON object"));
  EXPECT_THAT(problems_.kept()[3], HasSubstr("line 5: no ts_ms"));
  EXPECT_THAT(problems_.kept()[4], HasSubstr("line 6: ts_ms is not a time"));
  EXPECT_THAT(problems_.kept()[5], HasSubstr("line 7: no role"));
  EXPECT_THAT(problems_.kept()[6], HasSubstr("line 10: truncated"));
  EXPECT_EQ(Chart(data, "loss").series.at(0).points.size(), 2u);
}

TEST_F(MetricsReaderTest, ProblemsAreCountedButKeptBounded) {
  std::string text;
  for (int i = 0; i < 1000; ++i) text += "garbage\n";
  problems_ = ProblemLog(5);
  Read(text);
  EXPECT_EQ(problems_.total(), 1000);
  EXPECT_EQ(problems_.kept().size(), 5u);
}

TEST_F(MetricsReaderTest, LongLinesAreCutAndReported) {
  ReadLimits limits;
  limits.max_line_bytes = 1024;
  std::string text = "{\"ts_ms\":1000,\"role\":\"" + std::string(5000, 'r') + "\"}\n" +
                     "{\"ts_ms\":2000,\"role\":\"train\",\"rank\":0,\"towerps_train_loss\":1}\n";
  MetricsData data = Read(text, limits);
  ASSERT_EQ(problems_.total(), 1);
  EXPECT_THAT(problems_.kept()[0], HasSubstr("line 1: longer than 1024 bytes"));
  EXPECT_EQ(Chart(data, "loss").series.size(), 1u);
}

TEST_F(MetricsReaderTest, SeriesAndPointsAreBounded) {
  ReadLimits limits;
  limits.max_series = 10;
  limits.max_points_per_series = 16;
  std::string text;
  for (int i = 0; i < 2000; ++i) {
    absl::StrAppend(&text, "{\"ts_ms\":", 1000 + i, ",\"role\":\"worker\",\"rank\":", i % 40,
                    ",\"towerps_worker_loss\":", i == 1234 ? 99 : 1, "}\n");
  }
  MetricsData data = Read(text, limits);
  const TimeChart& loss = Chart(data, "loss");
  EXPECT_EQ(loss.series.size(), 10u);
  EXPECT_EQ(data.dropped_series, 30);
  EXPECT_EQ(data.dropped_examples.size(), 5u);
  double max = 0;
  for (const ChartSeries& s : loss.series) {
    EXPECT_LE(s.points.size(), 16u);
    for (const SeriesPoint& p : s.points) max = std::max(max, p.max);
  }
  // Worker 1234 % 40 = 34 was dropped; no spike among the kept ones.
  EXPECT_EQ(max, 1);
}

TEST_F(MetricsReaderTest, CounterResetStartsOver) {
  std::string text;
  const int values[] = {0, 100, 200, 10, 110};
  for (int i = 0; i < 5; ++i) {
    absl::StrAppend(&text, "{\"ts_ms\":", 1000 * (i + 1), ",\"role\":\"worker\",\"rank\":0,",
                    "\"towerps_worker_examples_total\":", values[i], "}\n");
  }
  MetricsData data = Read(text);
  const ChartSeries& rate = Chart(data, "examples_per_s").series.at(0);
  ASSERT_EQ(rate.points.size(), 3u);  // 0->100, 100->200, (reset), 10->110
  for (const SeriesPoint& p : rate.points) EXPECT_DOUBLE_EQ(p.mean(), 100);
}

TEST(MetricsReaderMissingTest, AbsentFileIsEmptyNotAnError) {
  MetricsData data;
  ProblemLog problems(5);
  ASSERT_TRUE(
      ReadMetrics(FreshTestDir("metrics_absent") + "/metrics.jsonl", ReadLimits(), &data, &problems)
          .ok());
  EXPECT_FALSE(data.present);
  EXPECT_EQ(data.charts.size(), 12u);
}

}  // namespace
}  // namespace towerps::dashboard
