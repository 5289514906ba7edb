#include "worker/embedded_trainer.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "common/file_util.h"
#include "common/test_dir.h"
#include "common/status.h"
#include "data/prepare.h"
#include "gtest/gtest.h"
#include "index/evaluation.h"
#include "ps/checkpoint.h"
#include "worker/loop_test_util.h"

namespace towerps::worker {
namespace {

constexpr char kSmallConfig[] = R"(
table item_id dim=16 init=uniform:0.05 optimizer=rowwise_adagrad lr=0.05
table attr dim=8 init=uniform:0.05 optimizer=rowwise_adagrad lr=0.05
feature user history table=item_id
feature user country table=attr
feature item item_id table=item_id
feature item creator table=attr
feature item tags table=attr
tower user mlp=32 cross=1 out=16
tower item mlp=32 cross=1 out=16
loss kind=softmax temperature=0.1 logq=on extra_negatives=16
dense_optimizer kind=adam lr=0.003
schedule warmup=10 min_lr_ratio=0.1
train batch=64 epochs=1 seed=3
)";

// A small generated dataset, made once for the whole test binary.
const std::string& SmallDataset() {
  static const std::string* dir =
      new std::string(GeneratedDataset("worker_ds", 400, 300, 12000, 6));
  return *dir;
}

absl::StatusOr<TrainResult> Train(const ModelConfig& config, const std::string& dataset,
                                  const std::string& run_dir, int threads) {
  EmbeddedTrainerOptions options;
  options.dataset_dir = dataset;
  options.run_dir = run_dir;
  options.threads = threads;
  options.log_losses = true;
  TOWERPS_ASSIGN_OR_RETURN(auto trainer, EmbeddedTrainer::Create(options, config, nullptr));
  return trainer->Run();
}

TEST(EmbeddedTrainerTest, OneThreadIsDeterministicAndLearns) {
  auto config = ParseModelConfig(kSmallConfig);
  ASSERT_TRUE(config.ok()) << config.status();
  std::string a = FreshTestDir("train_a"), b = FreshTestDir("train_b");
  auto ra = Train(*config, SmallDataset(), a, 1);
  ASSERT_TRUE(ra.ok()) << ra.status();
  auto rb = Train(*config, SmallDataset(), b, 1);
  ASSERT_TRUE(rb.ok()) << rb.status();
  EXPECT_GT(ra->steps, 50);
  std::string losses_a = *ReadFileToString(a + "/losses.tsv");
  EXPECT_EQ(losses_a, *ReadFileToString(b + "/losses.tsv"));
  // The loss falls: the first steps' loss is near log(batch + extras), the end lower.
  double first_loss = std::atof(losses_a.substr(losses_a.find('\t') + 1).c_str());
  EXPECT_LT(ra->final_loss, first_loss - 0.3) << "first " << first_loss;
  // The checkpoint is complete and verifiable.
  auto manifest = ps::VerifyCheckpoint(ra->checkpoint_dir);
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_EQ(manifest->step, ra->steps);
  EXPECT_EQ(manifest->files.size(), 3u);  // 2 tables + dense
}

TEST(EmbeddedTrainerTest, TwoThreadsTrainAndEvaluationBeatsPopularity) {
  auto config = ParseModelConfig(kSmallConfig);
  ASSERT_TRUE(config.ok());
  std::string run = FreshTestDir("train_2t");
  auto result = Train(*config, SmallDataset(), run, 2);
  ASSERT_TRUE(result.ok()) << result.status();
  index::EvaluationOptions eval;
  eval.dataset_dir = SmallDataset();
  eval.checkpoint_dir = result->checkpoint_dir;
  auto metrics = index::EvaluateExact(eval, *config);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(metrics->items, 300);
  EXPECT_GT(metrics->model.recall[1], metrics->popularity.recall[1]);  // recall@50
}

TEST(EmbeddedTrainerTest, BadInputIsAClearError) {
  auto config = ParseModelConfig(kSmallConfig);
  ASSERT_TRUE(config.ok());
  auto missing = Train(*config, "/nonexistent/dataset", FreshTestDir("train_bad"), 1);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  ModelConfig wrong = *config;
  FeatureSpec missing_feature;
  missing_feature.side = data::Side::kItem;
  missing_feature.feature = "no_such_feature";
  wrong.features.push_back(missing_feature);
  auto unbound = Train(wrong, SmallDataset(), FreshTestDir("train_bad2"), 1);
  EXPECT_EQ(unbound.status().code(), absl::StatusCode::kInvalidArgument);
}

// The real-data bar of issue 5: on MovieTweetings the model beats popularity.
TEST(EmbeddedTrainerTest, MovieTweetingsBeatsPopularity) {
  const char* shared = std::getenv("TOWERPS_SHARED_DATA");
  const char* source = std::getenv("TOWERPS_SOURCE_DIR");
  std::string input = std::string(shared ? shared : "") + "/movietweetings-100k";
  if (shared == nullptr || !PathExists(input + "/ratings.dat") || source == nullptr) {
    GTEST_SKIP() << "MovieTweetings not found at " << input
                 << " (../shared/data is absent); skipping the real-data bar";
  }
  std::string dataset = FreshTestDir("mt_ds");
  data::PrepareOptions p;
  p.source.input = input;
  p.output_dir = dataset;
  p.min_rating = 7;
  ASSERT_TRUE(data::Prepare(p).ok());
  auto config = LoadModelConfig(std::string(source) + "/examples/movietweetings.conf");
  ASSERT_TRUE(config.ok()) << config.status();
  auto result = Train(*config, dataset, FreshTestDir("mt_run"), 1);
  ASSERT_TRUE(result.ok()) << result.status();
  index::EvaluationOptions eval;
  eval.dataset_dir = dataset;
  eval.checkpoint_dir = result->checkpoint_dir;
  auto metrics = index::EvaluateExact(eval, *config);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  RecordProperty("recall_at_50", std::to_string(metrics->model.recall[1]));
  RecordProperty("popularity_recall_at_50", std::to_string(metrics->popularity.recall[1]));
  EXPECT_GT(metrics->model.recall[1], metrics->popularity.recall[1]);
  EXPECT_GT(metrics->model.recall[0], metrics->popularity.recall[0]);
}

}  // namespace
}  // namespace towerps::worker
