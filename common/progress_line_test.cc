#include "common/progress_line.h"

#include <limits>

#include "gtest/gtest.h"

namespace towerps {
namespace {

TEST(ProgressLineTest, KnownFigures) {
  ProgressFigures f;
  f.step = 120;
  f.total_steps = 4000;
  f.loss = 4.12341;
  f.examples_per_s = 3250.4;
  f.lr_scale = 0.85;
  f.eta_s = 118.2;
  EXPECT_EQ(FormatProgressLine(f),
            "step    120/4000  loss 4.1234      3250 examples/s  lr x0.850  ETA  118s");
}

TEST(ProgressLineTest, UnknownFiguresAreMarked) {
  ProgressFigures f;
  f.step = 7;
  f.examples_per_s = std::numeric_limits<double>::infinity();
  f.eta_s = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(FormatProgressLine(f),
            "step      7/?  loss -         0 examples/s  lr x0.000  ETA    ?");
}

}  // namespace
}  // namespace towerps
