#include "common/process_metrics.h"

#include <cstring>
#include <memory>

#include "gtest/gtest.h"

namespace towerps {
namespace {

TEST(ProcessMetricsTest, ParsesStatm) {
  EXPECT_EQ(*ParseStatmResidentBytes("2660 512 400 5 0 300 0\n", 4096), 512 * 4096);
  EXPECT_EQ(*ParseStatmResidentBytes("1 0 0 0 0 0 0", 4096), 0);
  for (const char* bad : {"", "12", "12 x 3", "12 -4 3", "1 99999999999999999999 0"}) {
    EXPECT_EQ(ParseStatmResidentBytes(bad, 4096).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
  EXPECT_FALSE(ParseStatmResidentBytes("1 2 3", 0).ok());
}

// Touching 64 MiB raises the resident size by at least half of it.
TEST(ProcessMetricsTest, ResidentMemoryFollowsTouchedPages) {
  absl::StatusOr<int64_t> before = ResidentMemoryBytes();
  if (absl::IsNotFound(before.status())) GTEST_SKIP() << "no /proc here";
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_GT(*before, 0);
  constexpr size_t kBytes = size_t{64} << 20;
  std::unique_ptr<char[]> block(new char[kBytes]);
  std::memset(block.get(), 1, kBytes);
  absl::StatusOr<int64_t> after = ResidentMemoryBytes();
  ASSERT_TRUE(after.ok());
  EXPECT_GE(*after - *before, static_cast<int64_t>(kBytes / 2));
  EXPECT_EQ(block[kBytes - 1], 1);  // keeps the block alive and touched
}

TEST(ProcessMetricsTest, UpdateSetsTheGauge) {
  MetricsRegistry registry;
  UpdateProcessMetrics(&registry);
  if (!ResidentMemoryBytes().ok()) GTEST_SKIP() << "no /proc here";
  EXPECT_GT(registry.GetGauge(kResidentMemoryMetric)->value(), 0);
}

}  // namespace
}  // namespace towerps
