#include "dashboard/series.h"

#include <cmath>

#include "gtest/gtest.h"

namespace towerps::dashboard {
namespace {

TEST(DownsampledSeriesTest, KeepsEveryValueBelowCapacity) {
  DownsampledSeries s(8);
  for (int i = 0; i < 7; ++i) s.Add(i * 10, i);
  std::vector<SeriesPoint> p = s.Points();
  ASSERT_EQ(p.size(), 7u);
  EXPECT_EQ(s.stride(), 1);
  for (int i = 0; i < 7; ++i) {
    EXPECT_EQ(p[i].t_first_ms, i * 10);
    EXPECT_EQ(p[i].mean(), i);
  }
}

TEST(DownsampledSeriesTest, StaysWithinCapacityAndKeepsExtremesAndSum) {
  for (int capacity : {2, 7, 64, 500}) {
    DownsampledSeries s(capacity);
    const int n = 1000003;
    double sum = 0;
    for (int i = 0; i < n; ++i) {
      double v = std::sin(i * 0.001);
      if (i == 777777) v = 1000;  // one spike
      if (i == 123457) v = -1000;
      s.Add(i, v);
      sum += v;
    }
    std::vector<SeriesPoint> p = s.Points();
    ASSERT_LE(static_cast<int>(p.size()), s.capacity()) << capacity;
    EXPECT_GE(static_cast<int>(p.size()), s.capacity() / 2) << capacity;
    double max = -1e9, min = 1e9, total = 0;
    int64_t count = 0, last_t = -1;
    for (const SeriesPoint& q : p) {
      max = std::max(max, q.max);
      min = std::min(min, q.min);
      total += q.sum;
      count += q.count;
      EXPECT_GT(q.t_first_ms, last_t);  // in order, no overlap
      EXPECT_LE(q.t_first_ms, q.t_last_ms);
      last_t = q.t_last_ms;
    }
    EXPECT_EQ(max, 1000) << "the spike survives at capacity " << capacity;
    EXPECT_EQ(min, -1000);
    EXPECT_EQ(count, n);
    EXPECT_NEAR(total, sum, 1e-6 * n);
    EXPECT_EQ(p.front().t_first_ms, 0);
    EXPECT_EQ(p.back().t_last_ms, n - 1);
    EXPECT_EQ(s.total(), n);
  }
}

TEST(DownsampledSeriesTest, CapacityRoundsUpToEven) {
  EXPECT_EQ(DownsampledSeries(0).capacity(), 2);
  EXPECT_EQ(DownsampledSeries(5).capacity(), 6);
}

}  // namespace
}  // namespace towerps::dashboard
