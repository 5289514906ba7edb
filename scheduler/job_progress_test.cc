#include "scheduler/job_progress.h"

#include <cmath>
#include <limits>

#include "gtest/gtest.h"
#include "scheduler/job_state.h"

namespace towerps::scheduler {
namespace {

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();

TEST(JobProgressTest, RatesAreOverTheWindowOfReports) {
  JobProgress progress(2, /*window_ms=*/10000);
  EXPECT_EQ(progress.RatesAt(0).steps_per_s, 0);  // unknown
  // Two workers, 10 steps/s each (20 global), 32 examples per step.
  for (int64_t t = 0; t <= 20; ++t) {
    for (int w = 0; w < 2; ++w) {
      progress.Report(w, 1.0, t * 320, /*global_step=*/t * 20, /*now_ms=*/t * 1000);
    }
  }
  JobRates rates = progress.RatesAt(20000);
  EXPECT_DOUBLE_EQ(rates.steps_per_s, 20.0);
  EXPECT_DOUBLE_EQ(rates.examples_per_s, 640.0);
  EXPECT_EQ(progress.total_examples(), 2 * 20 * 320);
  // Twice as fast for the last 5 s: the window (10 s) sees the mean of both paces.
  for (int64_t t = 21; t <= 25; ++t) {
    for (int w = 0; w < 2; ++w) {
      progress.Report(w, 1.0, 6400 + (t - 20) * 640, 400 + (t - 20) * 40, t * 1000);
    }
  }
  rates = progress.RatesAt(25000);
  EXPECT_DOUBLE_EQ(rates.steps_per_s, (600.0 - 300.0) / 10.0);
  // No report for longer than the window: unknown again.
  EXPECT_EQ(progress.RatesAt(36000).steps_per_s, 0);
  EXPECT_EQ(progress.RatesAt(36000).examples_per_s, 0);
}

TEST(JobProgressTest, ReportsCloseTogetherShareASample) {
  JobProgress progress(1, 10000);
  // 1000 reports a second for 20 s: the rate is right and the samples stay few.
  for (int64_t ms = 0; ms <= 20000; ++ms) progress.Report(0, 1.0, ms * 8, ms, ms);
  JobRates rates = progress.RatesAt(20000);
  EXPECT_NEAR(rates.steps_per_s, 1000.0, 1e-9);
  EXPECT_NEAR(rates.examples_per_s, 8000.0, 1e-9);
}

TEST(JobProgressTest, ARollbackRestartsTheRates) {
  JobProgress progress(1, 10000);
  progress.Report(0, 1.0, 0, 0, 0);
  progress.Report(0, 1.0, 100, 100, 1000);
  progress.Report(0, 1.0, 150, 40, 2000);  // rolled back to step 40
  EXPECT_EQ(progress.RatesAt(2000).steps_per_s, 0);
  progress.Report(0, 1.0, 250, 140, 3000);
  EXPECT_DOUBLE_EQ(progress.RatesAt(3000).steps_per_s, 100.0);
  EXPECT_DOUBLE_EQ(progress.RatesAt(3000).examples_per_s, 100.0);
}

TEST(JobProgressTest, LossIsTheMeanOfTheCountedWorkersLatest) {
  JobProgress progress(3);
  EXPECT_TRUE(std::isnan(progress.MeanLoss({true, true, true})));
  progress.Report(0, 2.0, 0, 0, 0);
  progress.Report(1, 4.0, 0, 0, 0);
  progress.Report(2, 9.0, 0, 0, 0);
  progress.Report(1, kNan, 0, 0, 1);  // no step since: keeps 4
  EXPECT_DOUBLE_EQ(progress.WorkerLoss(1), 4.0);
  EXPECT_DOUBLE_EQ(progress.MeanLoss({true, true, false}), 3.0);  // worker 2 dead
  EXPECT_DOUBLE_EQ(progress.MeanLoss({true, true, true}), 5.0);
  EXPECT_TRUE(std::isnan(progress.MeanLoss({false, false, false})));
}

TEST(JobProgressTest, HostileValuesDoNotPoisonTheFigures) {
  JobProgress progress(2, 10000);
  progress.Report(0, 2.0, 100, 10, 0);
  progress.Report(1, 4.0, 100, 20, 1000);
  for (double bad : {kNan, std::numeric_limits<double>::infinity(), -1.0, 1e30}) {
    progress.Report(1, bad, 200, 30, 2000);
  }
  EXPECT_DOUBLE_EQ(progress.WorkerLoss(1), 4.0);
  EXPECT_DOUBLE_EQ(progress.MeanLoss({true, true}), 3.0);
  // Negative, decreasing and huge counts are ignored.
  for (int64_t bad :
       {int64_t{-5}, int64_t{50}, kMaxReportedCount + 1, std::numeric_limits<int64_t>::max()}) {
    progress.Report(1, 4.0, bad, 30, 3000);
  }
  EXPECT_EQ(progress.WorkerExamples(1), 200);
  EXPECT_EQ(progress.total_examples(), 300);
  const JobRates rates = progress.RatesAt(3000);
  EXPECT_TRUE(std::isfinite(rates.examples_per_s));
  EXPECT_GE(rates.examples_per_s, 0);
  // Out-of-range ranks are ignored.
  progress.Report(-1, 1.0, 5, 30, 3000);
  progress.Report(2, 1.0, 5, 30, 3000);
  EXPECT_EQ(progress.total_examples(), 300);
  EXPECT_TRUE(std::isnan(progress.WorkerLoss(7)));
}

TEST(JobProgressTest, ARestartedWorkerCountsOnFromItsPredecessorsTotal) {
  JobProgress progress(1);
  progress.Report(0, 1.0, 500, 5, 0);
  progress.WorkerRestarted(0);
  progress.Report(0, 1.0, 30, 6, 100);  // the new process counts from 0
  EXPECT_EQ(progress.WorkerExamples(0), 530);
  progress.Report(0, 1.0, 10, 7, 200);  // lower again without a restart: ignored
  EXPECT_EQ(progress.WorkerExamples(0), 530);
  progress.Report(0, 1.0, 70, 8, 300);
  EXPECT_EQ(progress.total_examples(), 570);
}

TEST(JobProgressTest, Eta) {
  EXPECT_EQ(EtaSeconds(0, 10, 5.0), -1);    // no plan
  EXPECT_EQ(EtaSeconds(100, 10, 0.0), -1);  // no rate
  EXPECT_DOUBLE_EQ(EtaSeconds(100, 10, 5.0), 18.0);
  EXPECT_EQ(EtaSeconds(100, 120, 5.0), 0);
}

}  // namespace
}  // namespace towerps::scheduler
