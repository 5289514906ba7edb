#include "worker/training_loop.h"

#include <memory>
#include <string>
#include <vector>

#include "data/example_reader.h"
#include "gtest/gtest.h"
#include "worker/loop_test_util.h"
#include "worker/step_runner.h"

namespace towerps::worker {
namespace {

// Partition 0 (again after a restart), steps numbered by a counter; records calls.
class ScriptedPacer : public StepPacer {
 public:
  absl::StatusOr<PartitionStart> NextPartition(const LoopProgress& progress, bool done) override {
    asked.push_back(progress);
    if (done) finished = true;
    PartitionStart start;
    if (!finished) start.partition = 0;
    return start;
  }
  absl::StatusOr<StepGrant> MayStart(const LoopProgress& progress) override {
    StepGrant grant;
    if (restart_at >= 0 && progress.finished == restart_at) {
      restart_at = -1;
      grant.kind = StepGrant::Kind::kRestart;
      grant.finished = restart_to;
      return grant;
    }
    grant.kind = StepGrant::Kind::kRun;
    grant.step = next_step++;
    return grant;
  }
  absl::Status StepDone(const LoopProgress& progress, const StepStats&) override {
    last = progress;
    return absl::OkStatus();
  }
  absl::Status AwaitRecovery(const absl::Status&) override {
    ++awaited;
    return absl::OkStatus();
  }
  absl::Status Reconnect(StepRunner*) override {
    ++reconnected;
    return absl::OkStatus();
  }
  absl::Status Leave(const LoopProgress& progress, bool stopped) override {
    left = progress;
    left_stopped = stopped;
    return absl::OkStatus();
  }

  int64_t restart_at = -1, restart_to = 0, next_step = 0;
  int awaited = 0, reconnected = 0;
  std::vector<LoopProgress> asked;
  LoopProgress last, left;
  bool left_stopped = true;
  bool finished = false;  // partition 0 read to its end
};

// Fails the n-th Update (1-based) or Flush with Unavailable: a server that went away.
class FlakyParams final : public ps::ParamSource {
 public:
  FlakyParams(ps::ParamSource* target, int fail_at, int fail_flush_at = 0)
      : target_(target), fail_at_(fail_at), fail_flush_at_(fail_flush_at) {}
  absl::Status Pull(absl::Span<const ps::SparseSlice> s, int64_t step, bool create) override {
    return target_->Pull(s, step, create);
  }
  absl::Status Update(const ps::StepUpdate& update, int64_t step) override {
    if (++updates_ == fail_at_) return absl::UnavailableError("ps/0 is gone");
    return target_->Update(update, step);
  }
  absl::StatusOr<int64_t> PullDense(absl::Span<float> params) override {
    return target_->PullDense(params);
  }
  absl::Status AssignDense(absl::Span<const float> values) override {
    return target_->AssignDense(values);
  }
  absl::Status Flush() override {
    if (++flushes_ == fail_flush_at_) return absl::UnavailableError("ps/0 is gone");
    return target_->Flush();
  }
  int flushes() const { return flushes_; }

 private:
  ps::ParamSource* const target_;
  const int fail_at_, fail_flush_at_;
  int updates_ = 0, flushes_ = 0;
};

TEST(TrainingLoopTest, ReadsThePartitionOnceAndLeaves) {
  Fixture f;
  auto runner = f.Runner(f.params.get());
  ScriptedPacer pacer;
  TrainingLoopOptions options = f.LoopOptions();
  options.first_finished = 7;  // a replaced worker's clock
  Counter examples;
  options.metrics.examples = &examples;
  auto result = RunTrainingLoop(options, f.model, runner.get(), &pacer);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(examples.value(), result->examples);
  EXPECT_FALSE(result->stopped);
  EXPECT_FALSE(pacer.left_stopped);
  EXPECT_GE(result->examples, f.train_examples - 1);  // a last batch of 1 is skipped
  EXPECT_EQ(pacer.left.finished, 7 + result->steps);
  EXPECT_EQ(pacer.left.partition, -1);
  ASSERT_EQ(pacer.asked.size(), 2u);
  EXPECT_EQ(pacer.asked[1].offset, result->examples);  // reported done at its end
}

TEST(TrainingLoopTest, RestartDropsThePartitionAndResetsTheClock) {
  Fixture f;
  auto runner = f.Runner(f.params.get());
  ScriptedPacer pacer;
  pacer.restart_at = 3;
  pacer.restart_to = 1;
  auto result = RunTrainingLoop(f.LoopOptions(), f.model, runner.get(), &pacer);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(pacer.asked.size(), 3u);
  // After the rollback: no partition held, the clock at the view's count.
  EXPECT_EQ(pacer.asked[1].partition, -1);
  EXPECT_EQ(pacer.asked[1].finished, 1);
  // The partition is read again from its start.
  const int64_t batches = result->steps - 3;
  EXPECT_EQ(pacer.left.finished, 1 + batches);
  EXPECT_EQ(pacer.asked[2].offset, result->examples - 3 * f.model.config.batch_size);
}

TEST(TrainingLoopTest, AParamsOutageRetriesTheSameBatchAfterReconnecting) {
  Fixture f;
  auto clean_runner = f.Runner(f.params.get());
  ScriptedPacer clean;
  auto expected = RunTrainingLoop(f.LoopOptions(), f.model, clean_runner.get(), &clean);
  ASSERT_TRUE(expected.ok()) << expected.status();

  Fixture g;
  FlakyParams flaky(g.params.get(), /*fail_at=*/3);
  auto runner = g.Runner(&flaky);
  ScriptedPacer pacer;
  auto result = RunTrainingLoop(g.LoopOptions(), g.model, runner.get(), &pacer);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(pacer.awaited, 1);
  EXPECT_EQ(pacer.reconnected, 1);
  // Every batch trained once: the failed one again, nothing skipped.
  EXPECT_EQ(result->steps, expected->steps);
  EXPECT_EQ(result->examples, expected->examples);
  EXPECT_EQ(pacer.left.finished, clean.left.finished);
}

TEST(TrainingLoopTest, AnOutageAtTheFinalFlushIsWaitedOutToo) {
  Fixture f;
  FlakyParams flaky(f.params.get(), /*fail_at=*/0, /*fail_flush_at=*/1);
  auto runner = f.Runner(&flaky);
  ScriptedPacer pacer;
  auto result = RunTrainingLoop(f.LoopOptions(), f.model, runner.get(), &pacer);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(pacer.awaited, 1);
  EXPECT_EQ(pacer.reconnected, 1);
  EXPECT_EQ(flaky.flushes(), 2);
  ASSERT_EQ(pacer.asked.size(), 3u);  // asked again after the outage: nothing left
  EXPECT_EQ(pacer.left.finished, result->steps);
}

TEST(TrainingLoopTest, AnOutageOfAPacerThatCannotRecoverEndsTheLoop) {
  Fixture f;
  FlakyParams flaky(f.params.get(), /*fail_at=*/2);
  auto runner = f.Runner(&flaky);
  class Fragile : public ScriptedPacer {
    absl::Status AwaitRecovery(const absl::Status& status) override { return status; }
  } pacer;
  auto result = RunTrainingLoop(f.LoopOptions(), f.model, runner.get(), &pacer);
  EXPECT_TRUE(absl::IsUnavailable(result.status())) << result.status();
}

TEST(StepRunnerTest, ExtraNegativesDependOnlyOnSeedAndStep) {
  Fixture f;
  auto a = f.Runner(f.params.get());
  auto b = f.Runner(f.params.get());
  data::ExampleReaderOptions ro;
  ro.dataset_dir = Dataset();
  ro.split = "train";
  auto reader = *data::ExampleReader::Open(ro);
  data::ExampleBatch batch(f.model.schema);
  data::Example example;
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(*reader->Next(&example));
    batch.Add(example);
  }
  PreparedBatch pa(&f.model), pb(&f.model);
  pa.batch = &batch;
  pb.batch = &batch;
  // Runner a has prepared other steps before: the draw of step 9 is still the same.
  ASSERT_TRUE(a->Prepare(&pa, f.params.get(), 3).ok());
  ASSERT_TRUE(a->Prepare(&pa, f.params.get(), 9).ok());
  ASSERT_TRUE(b->Prepare(&pb, f.params.get(), 9).ok());
  ASSERT_EQ(pa.extra_ids.size(), 8u);
  EXPECT_EQ(pa.extra_ids, pb.extra_ids);
  ASSERT_TRUE(b->Prepare(&pb, f.params.get(), 10).ok());
  EXPECT_NE(pa.extra_ids, pb.extra_ids);
  // Another thread or rank draws other negatives at the same step.
  auto other = *StepRunner::Create(&f.model, f.catalog.get(), f.params.get(),
                                   StepRunner::NegativeSeed(f.model.config.seed, 1));
  ASSERT_TRUE(other->Prepare(&pb, f.params.get(), 9).ok());
  EXPECT_NE(pa.extra_ids, pb.extra_ids);
}

}  // namespace
}  // namespace towerps::worker
