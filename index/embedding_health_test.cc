#include "index/embedding_health.h"

#include <cmath>
#include <random>
#include <vector>

#include "common/test_dir.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "ps/checkpoint.h"
#include "ps/server.h"
#include "ps/shard_map.h"

namespace towerps::index {
namespace {

TEST(EmbeddingHealthTest, NormsAndQuantilesOfKnownVectors) {
  // Norms 0, 1, ..., 10 (a row (3k/5, 4k/5) has norm k).
  std::vector<float> v;
  for (int k = 0; k <= 10; ++k) {
    v.push_back(0.6f * k);
    v.push_back(0.8f * k);
  }
  std::vector<double> norms = RowNorms(v.data(), 11, 2);
  ASSERT_EQ(norms.size(), 11u);
  for (int k = 0; k <= 10; ++k) EXPECT_NEAR(norms[k], k, 1e-5);
  std::array<double, 7> q = NormQuantiles(norms);
  const double want[7] = {0, 1, 2.5, 5, 7.5, 9, 10};  // linear between order statistics
  for (int i = 0; i < 7; ++i) EXPECT_NEAR(q[i], want[i], 1e-5) << i;
  EXPECT_EQ(NormQuantiles({}), (std::array<double, 7>{}));
  EXPECT_EQ(NormQuantiles({2.0}), (std::array<double, 7>{2, 2, 2, 2, 2, 2, 2}));
}

TEST(EmbeddingHealthTest, HistogramBinsEveryValueOnce) {
  std::vector<double> values = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  std::vector<double> edges;
  std::vector<int64_t> counts;
  NormHistogram(values, 5, &edges, &counts);
  EXPECT_EQ(edges, (std::vector<double>{0, 2, 4, 6, 8, 10}));
  EXPECT_EQ(counts, (std::vector<int64_t>{2, 2, 2, 2, 3})) << "10 (the max) is in the last bin";
  // L2-normalised embeddings: norms 1 +- 1e-7 are one value, in the middle bin.
  NormHistogram({1.0, 1.0 - 1e-7, 1.0 + 1e-7, 1.0}, 20, &edges, &counts);
  ASSERT_EQ(edges.size(), 21u);
  EXPECT_DOUBLE_EQ(edges.front(), 0.5);
  EXPECT_DOUBLE_EQ(edges.back(), 1.5);
  EXPECT_EQ(counts[10], 4);
}

TEST(EmbeddingHealthTest, CollapsedEmbeddingsWarn) {
  // 50 copies of one direction, at different lengths: cosine 1.
  std::vector<float> items;
  for (int i = 0; i < 50; ++i) {
    for (float x : {1.0f, 2.0f, -1.0f}) items.push_back(x * (1 + i % 3));
  }
  const float users[] = {3, 4, 0};
  EmbeddingHealth h = ComputeEmbeddingHealth(items.data(), 50, users, 1, 3);
  EXPECT_NEAR(h.item_mean_pairwise_cosine, 1.0, 1e-9);
  EXPECT_TRUE(h.collapse_warning);
  EXPECT_EQ(h.items, 50);
  EXPECT_EQ(h.users, 1);
  EXPECT_NEAR(h.user_norm_quantiles[3], 5.0, 1e-6);
  EXPECT_NEAR(h.item_norm_quantiles[0], std::sqrt(6.0), 1e-5);
  EXPECT_NEAR(h.item_norm_quantiles[6], 3 * std::sqrt(6.0), 1e-5);
  int64_t counted = 0;
  for (int64_t c : h.item_norm_counts) counted += c;
  EXPECT_EQ(counted, 50);
}

TEST(EmbeddingHealthTest, OrthogonalAndOppositeEmbeddings) {
  // The 8 standard basis vectors of R^8: every pair orthogonal.
  std::vector<float> basis(64, 0.0f);
  for (int i = 0; i < 8; ++i) basis[i * 8 + i] = 2.0f;
  EXPECT_NEAR(MeanPairwiseCosine(basis.data(), 8, 8), 0.0, 1e-12);
  EXPECT_FALSE(ComputeEmbeddingHealth(basis.data(), 8, basis.data(), 8, 8).collapse_warning);
  // v and -v: cosine -1. A zero row has no direction and is left out.
  const float opposite[] = {1, 2, 0, 0, -1, -2};
  EXPECT_NEAR(MeanPairwiseCosine(opposite, 3, 2), -1.0, 1e-12);
  EXPECT_TRUE(std::isnan(MeanPairwiseCosine(opposite, 1, 2)));
}

// The closed form against the definition, on random vectors.
TEST(EmbeddingHealthTest, MeanPairwiseCosineIsExact) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.3f, 1.0f);
  const int n = 40, dim = 5;
  std::vector<float> v(n * dim);
  for (float& x : v) x = normal(rng);
  std::vector<double> norms = RowNorms(v.data(), n, dim);
  double sum = 0;
  for (int i = 0; i < n; ++i) {
    for (int j = i + 1; j < n; ++j) {
      double dot = 0;
      for (int d = 0; d < dim; ++d) dot += static_cast<double>(v[i * dim + d]) * v[j * dim + d];
      sum += dot / (norms[i] * norms[j]);
    }
  }
  EXPECT_NEAR(MeanPairwiseCosine(v.data(), n, dim), sum / (n * (n - 1) / 2), 1e-9);
}

TEST(EmbeddingHealthTest, JsonHasTheContractKeys) {
  std::vector<float> basis(16, 0.0f);
  for (int i = 0; i < 4; ++i) basis[i * 4 + i] = 1.0f;
  EmbeddingHealth h = ComputeEmbeddingHealth(basis.data(), 4, basis.data(), 2, 4);
  nlohmann::json j = nlohmann::json::parse(h.ToJson(), nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << h.ToJson();
  EXPECT_EQ(j["items"], 4);
  EXPECT_EQ(j["users"], 2);
  EXPECT_TRUE(j["item_coverage"].is_null()) << "unknown coverage";
  EXPECT_EQ(j["item_norm_quantiles"].size(), 7u);
  EXPECT_EQ(j["user_norm_quantiles"].size(), 7u);
  EXPECT_EQ(j["item_norm_histogram"]["edges"].size(), 21u);
  EXPECT_EQ(j["item_norm_histogram"]["counts"].size(), 20u);
  EXPECT_EQ(j["item_mean_pairwise_cosine"], 0);
  EXPECT_EQ(j["collapse_warning"], false);
  h.item_coverage = 0.25;
  j = nlohmann::json::parse(h.ToJson(), nullptr, false);
  EXPECT_EQ(j["item_coverage"], 0.25);
}

// A two-server checkpoint holding rows for 8 of the keys 1..10.
TEST(EmbeddingHealthTest, CoverageCountsTheRowsInTheCheckpoint) {
  const std::string root = FreshTestDir("embedding_health_ckpt", /*create=*/true);
  ps::ParameterServerOptions options;
  sparse_emb::TableConfig table;
  table.name = "item_id";
  table.dim = 4;
  options.tables = {table};
  options.dense_params = 2;
  options.num_servers = 2;
  options.job_id = 77;
  const std::string dir = ps::CheckpointDir(root, 5);
  auto map = ps::ShardMap::Balanced(16, 2);
  ASSERT_TRUE(map.ok());
  ps::CheckpointManifest manifest;
  manifest.job_id = 77;
  manifest.step = 5;
  manifest.num_servers = 2;
  manifest.num_virtual_shards = 16;
  manifest.dense_params = 2;
  for (int rank = 0; rank < 2; ++rank) {
    options.rank = rank;
    auto server = ps::ParameterServer::Create(options, nullptr);
    ASSERT_TRUE(server.ok()) << server.status();
    std::vector<uint64_t> keys;
    for (uint64_t key : {1, 2, 3, 5, 6, 7, 8, 10}) {
      if (map->ServerOf(key) == rank) keys.push_back(key);
    }
    std::vector<float> rows(keys.size() * 4);
    (*server)->table(0)->Pull(keys, 0, rows.data());  // creates the rows
    auto files = (*server)->SaveCheckpoint(dir, 5);
    ASSERT_TRUE(files.ok()) << files.status();
    for (const std::string& name : *files) manifest.files.push_back(*ps::DescribeFile(dir, name));
  }
  ASSERT_TRUE(ps::WriteManifest(dir, manifest).ok());
  options.rank = 0;
  auto checkpoint = ps::CheckpointParams::Open(dir, options);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();

  const std::vector<uint64_t> catalog = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  auto coverage = RowCoverage(**checkpoint, 0, catalog);
  ASSERT_TRUE(coverage.ok()) << coverage.status();
  EXPECT_DOUBLE_EQ(*coverage, 0.8);
  EXPECT_DOUBLE_EQ(*RowCoverage(**checkpoint, 0, std::vector<uint64_t>{4, 9}), 0.0);
  EXPECT_TRUE(std::isnan(*RowCoverage(**checkpoint, 0, {})));
  EXPECT_EQ(RowCoverage(**checkpoint, 1, catalog).status().code(),
            absl::StatusCode::kInvalidArgument);
  (void)RemoveAll(root);
}

}  // namespace
}  // namespace towerps::index
