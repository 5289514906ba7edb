#include "worker/training_loop.h"

#include <memory>
#include <string>
#include <vector>

#include "common/file_util.h"
#include "common/test_dir.h"
#include "data/example_reader.h"
#include "data/generator.h"
#include "data/prepare.h"
#include "gtest/gtest.h"
#include "ps/local_params.h"
#include "ps/server.h"
#include "worker/item_catalog.h"
#include "worker/job_plan.h"
#include "worker/model_config.h"
#include "worker/step_runner.h"

namespace towerps::worker {
namespace {

constexpr char kConfig[] = R"(
table item_id dim=8 init=uniform:0.05 optimizer=rowwise_adagrad lr=0.05
feature user history table=item_id
feature item item_id table=item_id
tower user mlp=16 cross=1 out=8
tower item mlp=16 cross=1 out=8
loss kind=softmax temperature=0.1 logq=on extra_negatives=8
dense_optimizer kind=adam lr=0.003
train batch=32 epochs=1 seed=5
)";

const std::string& Dataset() {
  static const std::string* dir = [] {
    auto* out = new std::string(FreshTestDir("loop_ds"));
    data::GenerateOptions g;
    g.output_dir = *out + "_logs";
    g.users = 100;
    g.items = 80;
    g.interactions = 1500;
    g.clusters = 3;
    EXPECT_TRUE(data::Generate(g).ok());
    data::PrepareOptions p;
    p.source.input = g.output_dir;
    p.output_dir = *out;
    EXPECT_TRUE(data::Prepare(p).ok());
    return out;
  }();
  return *dir;
}

// A model, its in-process server and a runner over it.
struct Fixture {
  Fixture() {
    auto meta = data::LoadDatasetMeta(Dataset());
    EXPECT_TRUE(meta.ok()) << meta.status();
    train_examples = static_cast<int64_t>(meta->num_examples("train"));
    auto config = ParseModelConfig(kConfig);
    EXPECT_TRUE(config.ok()) << config.status();
    model = *BindModel(*config, meta->schema);
    catalog = *ItemCatalog::Load(Dataset());
    server = *ps::ParameterServer::Create(ServerOptionsFor(model, 0, 1), nullptr);
    params = std::make_unique<ps::LocalParams>(server.get());
  }
  std::unique_ptr<StepRunner> Runner(ps::ParamSource* source) {
    auto runner = *StepRunner::Create(&model, catalog.get(), source,
                                      StepRunner::NegativeSeed(model.config.seed, 0));
    EXPECT_TRUE(runner->InitDense(true).ok());
    return runner;
  }
  TrainingLoopOptions LoopOptions() const {
    TrainingLoopOptions o;
    o.dataset_dir = Dataset();
    o.seed = model.config.seed;
    o.batch_size = model.config.batch_size;
    o.name = "test";
    return o;
  }

  int64_t train_examples = 0;
  BoundModel model;
  std::unique_ptr<ItemCatalog> catalog;
  std::unique_ptr<ps::ParameterServer> server;
  std::unique_ptr<ps::LocalParams> params;
};

// Partition 0 (again after a restart), steps numbered by a counter; records calls.
class ScriptedPacer : public StepPacer {
 public:
  absl::StatusOr<PartitionStart> NextPartition(const LoopProgress& progress, bool done) override {
    asked.push_back(progress);
    PartitionStart start;
    if (!done) start.partition = 0;
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
  absl::Status StepDone(const LoopProgress& progress) override {
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
};

// Fails the n-th Update (1-based) with Unavailable: a server that went away.
class FlakyParams final : public ps::ParamSource {
 public:
  FlakyParams(ps::ParamSource* target, int fail_at) : target_(target), fail_at_(fail_at) {}
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

 private:
  ps::ParamSource* const target_;
  const int fail_at_;
  int updates_ = 0;
};

TEST(TrainingLoopTest, ReadsThePartitionOnceAndLeaves) {
  Fixture f;
  auto runner = f.Runner(f.params.get());
  ScriptedPacer pacer;
  TrainingLoopOptions options = f.LoopOptions();
  options.first_finished = 7;  // a replaced worker's clock
  auto result = RunTrainingLoop(options, f.model, runner.get(), &pacer);
  ASSERT_TRUE(result.ok()) << result.status();
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
