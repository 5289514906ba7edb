#include "common/metrics.h"

#include <unistd.h>

#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_split.h"
#include "common/file_util.h"
#include "gtest/gtest.h"

namespace towerps {
namespace {

TEST(HistogramTest, QuantilesWithinThreePercent) {
  Histogram h;
  for (int i = 1; i <= 10000; ++i) h.Record(i);
  Histogram::Snapshot s = h.TakeSnapshot(/*reset=*/false);
  EXPECT_EQ(s.count, 10000);
  EXPECT_NEAR(s.p50, 5000, 5000 * 0.03);
  EXPECT_NEAR(s.p99, 9900, 9900 * 0.03);
  EXPECT_EQ(s.min, 1);
  EXPECT_EQ(s.max, 10000);
  EXPECT_DOUBLE_EQ(s.sum, 10000.0 * 10001 / 2);
}

TEST(HistogramTest, ResetStartsAFreshInterval) {
  Histogram h;
  h.Record(1000);
  EXPECT_EQ(h.TakeSnapshot(true).count, 1);
  EXPECT_EQ(h.TakeSnapshot(true).count, 0);
  h.Record(3);
  Histogram::Snapshot s = h.TakeSnapshot(true);
  EXPECT_EQ(s.count, 1);
  EXPECT_NEAR(s.p50, 3, 0.1);
}

TEST(HistogramTest, HeavyTailP99) {
  Histogram h;
  std::mt19937 rng(7);
  std::exponential_distribution<double> exp(1.0 / 200.0);
  std::vector<double> values;
  for (int i = 0; i < 100000; ++i) {
    values.push_back(exp(rng));
    h.Record(values.back());
  }
  std::sort(values.begin(), values.end());
  Histogram::Snapshot s = h.TakeSnapshot(false);
  EXPECT_NEAR(s.p99, values[98999], values[98999] * 0.04);
  EXPECT_NEAR(s.p50, values[49999], values[49999] * 0.04);
}

TEST(HistogramTest, ConcurrentRecordsAllCounted) {
  Histogram h;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50000; ++i) h.Record(10);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(h.TakeSnapshot(false).count, 200000);
}

TEST(MetricsRegistryTest, SameNameSameMetric) {
  MetricsRegistry registry;
  Counter* a = registry.GetCounter("towerps_test_requests_total");
  a->Increment(3);
  EXPECT_EQ(registry.GetCounter("towerps_test_requests_total"), a);
  EXPECT_EQ(a->value(), 3);
}

TEST(MetricsWriterTest, WritesOneJsonObjectPerLine) {
  std::string path = std::filesystem::path(::testing::TempDir()) /
                     ("metrics_" + std::to_string(::getpid()) + ".jsonl");
  std::filesystem::remove(path);
  MetricsRegistry registry;
  FakeClock clock(5'000'000);
  registry.GetCounter("towerps_test_rows_total")->Increment(42);
  registry.GetGauge("towerps_test_loss")->Set(0.25);
  registry.GetHistogram("towerps_test_pull_latency_us")->Record(100);
  MetricsWriterOptions options;
  options.path = path;
  options.role = "worker";
  options.rank = 3;
  auto writer = MetricsWriter::Create(options, &registry, &clock);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->WriteNow().ok());
  (*writer)->Stop();  // writes a final line
  std::string contents = *ReadFileToString(path);
  std::vector<std::string> lines = absl::StrSplit(contents, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].front(), '{');
  EXPECT_EQ(lines[0].back(), '}');
  EXPECT_NE(lines[0].find(R"("ts_ms":5000,"role":"worker","rank":3)"), std::string::npos);
  EXPECT_NE(lines[0].find(R"("towerps_test_rows_total":42)"), std::string::npos);
  EXPECT_NE(lines[0].find(R"("towerps_test_loss":0.25)"), std::string::npos);
  EXPECT_NE(lines[0].find(R"("towerps_test_pull_latency_us_count":1)"), std::string::npos);
  // Every line carries the process's resident memory, refreshed before it is written.
  EXPECT_NE(lines[0].find(R"("towerps_process_resident_memory_bytes":)"), std::string::npos);
  EXPECT_GT(registry.GetGauge("towerps_process_resident_memory_bytes")->value(), 0);
  // Histograms report per interval: the second line saw no new records.
  EXPECT_NE(lines[1].find(R"("towerps_test_pull_latency_us_count":0)"), std::string::npos);
  std::filesystem::remove(path);
}

TEST(MetricsWriterTest, BadOptionsRejected) {
  MetricsRegistry registry;
  RealClock clock;
  MetricsWriterOptions options;
  EXPECT_EQ(MetricsWriter::Create(options, &registry, &clock).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.path = "/nonexistent-dir/metrics.jsonl";
  EXPECT_EQ(MetricsWriter::Create(options, &registry, &clock).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace towerps
