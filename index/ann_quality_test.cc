// The ANN quality bar on real and generated data at default settings: train a
// model, export the item embeddings, build the default sharded HNSW index and
// evaluate the test split through it beside exact retrieval on the same
// embeddings. index_recall@10 >= 0.95 and ANN Recall@50 within 2% of exact.
#include <cblas.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/test_dir.h"
#include "common/status.h"
#include "data/generator.h"
#include "data/prepare.h"
#include "gtest/gtest.h"
#include "index/ann_evaluation.h"
#include "index/embedder.h"
#include "index/embeddings.h"
#include "index/evaluation.h"
#include "index/sharded_index.h"
#include "worker/embedded_trainer.h"

namespace towerps::index {
namespace {

// export (items) -> build-index (defaults) -> evaluate --ann, as the CLI does.
absl::StatusOr<std::pair<EvaluationResult, AnnEvaluationResult>> TrainExportIndexEvaluate(
    const std::string& dataset, const worker::ModelConfig& config, const std::string& work) {
  worker::EmbeddedTrainerOptions train;
  train.dataset_dir = dataset;
  train.run_dir = work + "/run";
  train.threads = 2;
  openblas_set_num_threads(1);  // one model replica per thread, as `towerps train` does
  TOWERPS_ASSIGN_OR_RETURN(auto trainer, worker::EmbeddedTrainer::Create(train, config, nullptr));
  TOWERPS_ASSIGN_OR_RETURN(worker::TrainResult trained, trainer->Run());

  EmbedderOptions embed;
  embed.dataset_dir = dataset;
  embed.checkpoint_dir = trained.checkpoint_dir;
  TOWERPS_ASSIGN_OR_RETURN(auto embedder, TowerEmbedder::Create(embed, config));
  TOWERPS_ASSIGN_OR_RETURN(int64_t count, embedder->CountEntities(data::Side::kItem));
  TOWERPS_RETURN_IF_ERROR(CreateDirectories(work + "/emb"));
  TOWERPS_ASSIGN_OR_RETURN(
      auto writer, EmbeddingWriter::Open(work + "/emb/items.emb", "", data::Side::kItem,
                                         embedder->dim(), count, embedder->model_step()));
  TOWERPS_RETURN_IF_ERROR(embedder->EmbedAll(
      data::Side::kItem, [&](absl::Span<const uint64_t> keys, absl::Span<const std::string> ids,
                             const models::Mat<float>& m) {
        return writer->Append(keys, ids, absl::MakeConstSpan(m.data(), m.size()));
      }));
  TOWERPS_RETURN_IF_ERROR(writer->Finish());
  TOWERPS_ASSIGN_OR_RETURN(auto items, EmbeddingTable::Read(work + "/emb/items.emb"));
  IndexBuildOptions build;  // defaults: 4 shards, HNSW32, efConstruction 200
  build.threads = 2;
  TOWERPS_RETURN_IF_ERROR(BuildShardedIndex(build, items->keys, items->values.data(), items->dim,
                                            items->model_step, work + "/index")
                              .status());
  TOWERPS_ASSIGN_OR_RETURN(auto index, ShardedIndex::Load(work + "/index"));

  EvaluationOptions eval;
  eval.dataset_dir = dataset;
  eval.checkpoint_dir = trained.checkpoint_dir;
  eval.threads = 2;
  TOWERPS_ASSIGN_OR_RETURN(EvaluationSet set, BuildEvaluationSet(eval, config));
  if (set.model_step != index->manifest().model_step) {
    return absl::InternalError("index and checkpoint steps differ");
  }
  TOWERPS_ASSIGN_OR_RETURN(EvaluationResult exact, EvaluateExactOn(set, eval));
  AnnEvaluationOptions ann;  // default efSearch
  ann.ef_searches = {};
  TOWERPS_ASSIGN_OR_RETURN(AnnEvaluationResult through_index,
                           EvaluateAnn(set, exact, *index, ann));
  return std::make_pair(std::move(exact), std::move(through_index));
}

void ExpectQualityBar(const EvaluationResult& exact, const AnnEvaluationResult& ann) {
  const AnnSweepPoint& point = ann.sweep[ann.primary];
  ASSERT_EQ(point.metrics.ks, (std::vector<int>{10, 50, 100}));
  ::testing::Test::RecordProperty("index_recall_at_10", std::to_string(point.index_recall[0]));
  ::testing::Test::RecordProperty("ann_recall_at_50", std::to_string(point.metrics.recall[1]));
  ::testing::Test::RecordProperty("exact_recall_at_50", std::to_string(exact.model.recall[1]));
  EXPECT_GE(point.index_recall[0], 0.95);
  EXPECT_GE(point.metrics.recall[1], 0.98 * exact.model.recall[1]);
  EXPECT_LE(point.metrics.recall[1], 1.02 * exact.model.recall[1]);
  EXPECT_GT(exact.model.recall[1], exact.popularity.recall[1]) << "the model learned nothing";
}

// Sanitizer builds run ~10x slower; the bar is a Release property of the models.
#if defined(__SANITIZE_ADDRESS__)
#define TOWERPS_SKIP_UNDER_SANITIZERS() GTEST_SKIP() << "quality bar: Release builds only"
#else
#define TOWERPS_SKIP_UNDER_SANITIZERS() (void)0
#endif

TEST(AnnQualityTest, GeneratedDefaultData) {
  TOWERPS_SKIP_UNDER_SANITIZERS();
  const char* source = std::getenv("TOWERPS_SOURCE_DIR");
  if (source == nullptr) GTEST_SKIP() << "TOWERPS_SOURCE_DIR not set (run through ctest)";
  const std::string work = FreshTestDir("ann_gen");
  data::GenerateOptions g;  // the default data (deploy/demo.sh's sizes)
  g.output_dir = work + "/logs";
  ASSERT_TRUE(data::Generate(g).ok());
  data::PrepareOptions p;
  p.source.input = g.output_dir;
  p.output_dir = work + "/dataset";
  ASSERT_TRUE(data::Prepare(p).ok());
  auto config = worker::LoadModelConfig(std::string(source) + "/examples/generated.conf");
  ASSERT_TRUE(config.ok()) << config.status();
  auto result = TrainExportIndexEvaluate(p.output_dir, *config, work);
  ASSERT_TRUE(result.ok()) << result.status();
  ExpectQualityBar(result->first, result->second);
}

TEST(AnnQualityTest, MovieTweetings) {
  TOWERPS_SKIP_UNDER_SANITIZERS();
  const char* shared = std::getenv("TOWERPS_SHARED_DATA");
  const char* source = std::getenv("TOWERPS_SOURCE_DIR");
  const std::string input = std::string(shared ? shared : "") + "/movietweetings-100k";
  if (shared == nullptr || !PathExists(input + "/ratings.dat") || source == nullptr) {
    GTEST_SKIP() << "MovieTweetings not found at " << input
                 << " (../shared/data is absent); skipping the real-data ANN bar";
  }
  const std::string work = FreshTestDir("ann_mt");
  data::PrepareOptions p;
  p.source.input = input;
  p.output_dir = work + "/dataset";
  p.min_rating = 7;
  ASSERT_TRUE(data::Prepare(p).ok());
  auto config = worker::LoadModelConfig(std::string(source) + "/examples/movietweetings.conf");
  ASSERT_TRUE(config.ok()) << config.status();
  auto result = TrainExportIndexEvaluate(p.output_dir, *config, work);
  ASSERT_TRUE(result.ok()) << result.status();
  ExpectQualityBar(result->first, result->second);
}

}  // namespace
}  // namespace towerps::index
