#include "models/lr_schedule.h"

#include "gtest/gtest.h"

namespace towerps::models {
namespace {

LrSchedule Make(bool restarts, double mult, int64_t decay = 100) {
  LrScheduleOptions o;
  o.base_lr = 1.0;
  o.warmup_steps = 10;
  o.decay_steps = decay;
  o.min_lr = 0.1;
  o.restarts = restarts;
  o.cycle_mult = mult;
  auto s = LrSchedule::Create(o);
  EXPECT_TRUE(s.ok());
  return *s;
}

struct Point {
  int64_t step;
  double lr;
};

TEST(LrScheduleTest, WarmupThenCosineToFloor) {
  LrSchedule s = Make(false, 1.0);
  for (Point p : {Point{-5, 0.1}, Point{0, 0.1}, Point{4, 0.5}, Point{9, 1.0}, Point{10, 1.0},
                  Point{60, 0.55}, Point{35, 0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI / 4))},
                  Point{109, 0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * 0.99))}, Point{110, 0.1},
                  Point{100000, 0.1}}) {
    EXPECT_NEAR(s.LrAt(p.step), p.lr, 1e-12) << "step " << p.step;
  }
}

TEST(LrScheduleTest, RestartsSgdr) {
  LrSchedule same = Make(true, 1.0);
  EXPECT_NEAR(same.LrAt(110), 1.0, 1e-12);
  EXPECT_NEAR(same.LrAt(160), 0.55, 1e-12);
  EXPECT_NEAR(same.LrAt(310), 1.0, 1e-12);
  LrSchedule growing = Make(true, 2.0);  // cycles of 100, 200, 400 steps
  EXPECT_NEAR(growing.LrAt(60), 0.55, 1e-12);
  EXPECT_NEAR(growing.LrAt(110), 1.0, 1e-12);
  EXPECT_NEAR(growing.LrAt(210), 0.55, 1e-12);
  EXPECT_NEAR(growing.LrAt(310), 1.0, 1e-12);
  EXPECT_NEAR(growing.LrAt(510), 0.55, 1e-12);
}

TEST(LrScheduleTest, ConstantAndValidation) {
  LrSchedule constant = Make(false, 1.0, /*decay=*/0);
  EXPECT_NEAR(constant.LrAt(4), 0.5, 1e-12);
  EXPECT_NEAR(constant.LrAt(1000000), 1.0, 1e-12);
  LrScheduleOptions o;
  o.base_lr = 0;
  EXPECT_FALSE(LrSchedule::Create(o).ok());
  o = {};
  o.min_lr = 2 * o.base_lr;
  EXPECT_FALSE(LrSchedule::Create(o).ok());
  o = {};
  o.warmup_steps = -1;
  EXPECT_FALSE(LrSchedule::Create(o).ok());
  o = {};
  o.cycle_mult = 0.5;
  EXPECT_FALSE(LrSchedule::Create(o).ok());
}

}  // namespace
}  // namespace towerps::models
