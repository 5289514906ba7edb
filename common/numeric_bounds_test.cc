#include "common/numeric_bounds.h"

#include <cmath>
#include <limits>
#include <vector>

#include "gtest/gtest.h"

namespace towerps {
namespace {

TEST(NumericBoundsTest, GradientsAndRates) {
  std::vector<float> g(37, 0.5f);
  EXPECT_TRUE(CheckGradients(g, "table", 2).ok());
  for (float bad : {NAN, INFINITY, -INFINITY, 3e38f, -0x1p33f}) {
    g[17] = bad;
    absl::Status s = CheckGradients(g, "table", 2);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(s.message().substr(0, 8), "table 2:");
  }
  g[17] = -kMaxGradientMagnitude;  // the bound itself is accepted
  EXPECT_TRUE(CheckGradients(g, "dense").ok());
  EXPECT_TRUE(AllWithin({}, 0.0f));
  for (float lr : {1e-9f, 0.05f, kMaxLearningRate}) EXPECT_TRUE(CheckLearningRate(lr, "t").ok());
  for (float lr : {0.0f, -1.0f, NAN, INFINITY, 1001.0f}) {
    EXPECT_EQ(CheckLearningRate(lr, "t").code(), absl::StatusCode::kInvalidArgument) << lr;
  }
}

}  // namespace
}  // namespace towerps
