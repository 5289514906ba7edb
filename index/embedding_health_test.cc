#include "index/embedding_health.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include "common/test_dir.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "ps/checkpoint.h"
#include "ps/checkpoint_params.h"
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
  // Towers that do not L2-normalise: their output norms are reported.
  EmbeddingHealth h =
      ComputeEmbeddingHealth(items.data(), 50, users, 1, 3, {.item = false, .user = false});
  EXPECT_NEAR(h.item_mean_pairwise_cosine, 1.0, 1e-9);
  EXPECT_TRUE(h.collapse_warning);
  EXPECT_EQ(h.items, 50);
  EXPECT_EQ(h.users, 1);
  ASSERT_TRUE(h.user_norm_quantiles && h.item_norm_quantiles);
  EXPECT_NEAR((*h.user_norm_quantiles)[3], 5.0, 1e-6);
  EXPECT_NEAR((*h.item_norm_quantiles)[0], std::sqrt(6.0), 1e-5);
  EXPECT_NEAR((*h.item_norm_quantiles)[6], 3 * std::sqrt(6.0), 1e-5);
  // L2-normalised towers (the default): norms of 1 by construction are left out.
  h = ComputeEmbeddingHealth(items.data(), 50, users, 1, 3, {});
  EXPECT_TRUE(h.collapse_warning);
  EXPECT_FALSE(h.item_norm_quantiles || h.user_norm_quantiles);
  nlohmann::json j = nlohmann::json::parse(h.ToJson(), nullptr, false);
  EXPECT_FALSE(j.contains("item_norm_quantiles")) << j.dump();
  EXPECT_FALSE(j.contains("user_norm_quantiles")) << j.dump();
}

// The threshold: healthy towers measured up to 0.75 (docs/metrics.md) stay below
// it; a tower whose items all lie within a narrow cone around one direction is above.
TEST(EmbeddingHealthTest, CollapseThresholdSeparatesHealthyFromCollapsed) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int n = 500, dim = 32;
  // Each item = shared * a + its own random part: the mean cosine grows with a.
  std::vector<float> shared(dim);
  for (float& x : shared) x = normal(rng);
  auto items_with_shared = [&](float a) {
    std::vector<float> v(n * dim);
    for (int i = 0; i < n; ++i) {
      for (int d = 0; d < dim; ++d) v[i * dim + d] = a * shared[d] + normal(rng);
    }
    return v;
  };
  std::vector<float> healthy = items_with_shared(1.5f);    // mean cosine ~0.7
  std::vector<float> collapsed = items_with_shared(6.0f);  // ~0.97
  EmbeddingHealth h = ComputeEmbeddingHealth(healthy.data(), n, healthy.data(), 1, dim, {});
  EXPECT_GT(h.item_mean_pairwise_cosine, 0.6);  // a healthy trained tower's range
  EXPECT_FALSE(h.collapse_warning) << h.item_mean_pairwise_cosine;
  h = ComputeEmbeddingHealth(collapsed.data(), n, collapsed.data(), 1, dim, {});
  EXPECT_TRUE(h.collapse_warning) << h.item_mean_pairwise_cosine;
  EXPECT_EQ(h.collapse_threshold, kCollapseCosineThreshold);
}

// Beyond the reservoir's capacity: min and max stay exact, the other quantiles
// come from a uniform sample.
TEST(EmbeddingHealthTest, NormSampleKeepsBoundedUniformSample) {
  NormSample small;
  for (double v : {3.0, 1.0, 2.0}) small.Add(v);
  small.Add(std::nan(""));
  small.Add(INFINITY);
  EXPECT_EQ(small.count(), 3);
  EXPECT_EQ(small.non_finite(), 2);
  EXPECT_EQ(small.Quantiles(), (std::array<double, 7>{1, 1.2, 1.5, 2, 2.5, 2.8, 3}));
  NormSample sample(/*capacity=*/1000);
  for (int i = 0; i <= 100000; ++i) sample.Add(i / 1000.0);  // uniform on [0, 100]
  EXPECT_EQ(sample.count(), 100001);
  std::array<double, 7> q = sample.Quantiles();
  EXPECT_EQ(q[0], 0);
  EXPECT_EQ(q[6], 100);
  const double want[7] = {0, 10, 25, 50, 75, 90, 100};
  for (int i = 1; i < 6; ++i) EXPECT_NEAR(q[i], want[i], 5) << i;  // ~1.6 standard errors
  EXPECT_EQ(NormSample().Quantiles(), (std::array<double, 7>{}));
}

TEST(EmbeddingHealthTest, OrthogonalAndOppositeEmbeddings) {
  // The 8 standard basis vectors of R^8: every pair orthogonal.
  std::vector<float> basis(64, 0.0f);
  for (int i = 0; i < 8; ++i) basis[i * 8 + i] = 2.0f;
  EXPECT_NEAR(MeanPairwiseCosine(basis.data(), 8, 8), 0.0, 1e-12);
  EXPECT_FALSE(ComputeEmbeddingHealth(basis.data(), 8, basis.data(), 8, 8, {}).collapse_warning);
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
  EmbeddingHealth h = ComputeEmbeddingHealth(basis.data(), 4, basis.data(), 2, 4, {});
  nlohmann::json j = nlohmann::json::parse(h.ToJson(), nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << h.ToJson();
  EXPECT_EQ(j["items"], 4);
  EXPECT_EQ(j["users"], 2);
  EXPECT_TRUE(j["item_coverage"].is_null()) << "unknown coverage";
  for (const char* key : {"item_id_rows", "item_id_norm_quantiles", "item_id_norm_histogram",
                          "user_id_rows", "user_id_norm_quantiles"}) {
    EXPECT_TRUE(j.contains(key) && j[key].is_null()) << key << ": no checkpoint";
  }
  EXPECT_EQ(j["item_mean_pairwise_cosine"], 0);
  EXPECT_EQ(j["collapse_threshold"], kCollapseCosineThreshold);
  EXPECT_EQ(j["collapse_warning"], false);
  h.item_coverage = 0.25;
  RowNormDistribution d;
  d.rows = 3;
  d.quantiles = {1, 2, 3, 4, 5, 6, 7};
  NormHistogram({1, 4, 7}, kNormHistogramBins, &d.edges, &d.counts);
  h.item_id_norms = d;
  h.user_id_norms = d;
  j = nlohmann::json::parse(h.ToJson(), nullptr, false);
  EXPECT_EQ(j["item_coverage"], 0.25);
  EXPECT_EQ(j["item_id_rows"], 3);
  EXPECT_EQ(j["user_id_rows"], 3);
  EXPECT_EQ(j["item_id_norm_quantiles"].size(), 7u);
  EXPECT_EQ(j["user_id_norm_quantiles"][6], 7);
  EXPECT_EQ(j["item_id_norm_histogram"]["edges"].size(), 21u);
  EXPECT_EQ(j["item_id_norm_histogram"]["counts"].size(), 20u);
  EXPECT_FALSE(j.contains("user_id_norm_histogram"));
}

// A two-server checkpoint of table "item_id" (dim 4) holding rows for 8 of the keys
// 1..10: key k's row is (0.6k, 0.8k, 0, 0), of norm k (zero init, SGD, lr 1, one
// push of minus the row).
class CheckpointHealthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = FreshTestDir("embedding_health_ckpt", /*create=*/true);
    sparse_emb::TableConfig table;
    table.name = "item_id";
    table.dim = 4;
    table.initializer.kind = sparse_emb::InitKind::kZeros;
    table.optimizer.kind = sparse_emb::OptimizerKind::kSgd;
    options_.tables = {table};
    options_.dense_params = 2;
    options_.num_servers = 2;
    options_.job_id = 77;
    const std::string dir = ps::CheckpointDir(root_, 5);
    auto map = ps::ShardMap::Balanced(16, 2);
    ASSERT_TRUE(map.ok());
    ps::CheckpointManifest manifest;
    manifest.job_id = 77;
    manifest.step = 5;
    manifest.num_servers = 2;
    manifest.num_virtual_shards = 16;
    manifest.dense_params = 2;
    for (int rank = 0; rank < 2; ++rank) {
      options_.rank = rank;
      auto server = ps::ParameterServer::Create(options_, nullptr);
      ASSERT_TRUE(server.ok()) << server.status();
      std::vector<uint64_t> keys;
      std::vector<float> grads;
      for (uint64_t key : {1, 2, 3, 5, 6, 7, 8, 10}) {
        if (map->ServerOf(key) != rank) continue;
        keys.push_back(key);
        for (float x : {-0.6f * key, -0.8f * key, 0.0f, 0.0f}) grads.push_back(x);
      }
      (*server)->table(0)->Push(keys, grads.data(), /*lr=*/1.0f, /*step=*/1);
      auto files = (*server)->SaveCheckpoint(dir, 5);
      ASSERT_TRUE(files.ok()) << files.status();
      for (const std::string& name : *files) {
        manifest.files.push_back(*ps::DescribeFile(dir, name));
      }
    }
    ASSERT_TRUE(ps::WriteManifest(dir, manifest).ok());
    options_.rank = 0;
    auto checkpoint = ps::CheckpointParams::Open(dir, options_);
    ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
    checkpoint_ = *std::move(checkpoint);
  }
  void TearDown() override { (void)RemoveAll(root_); }

  std::string root_;
  ps::ParameterServerOptions options_;
  std::unique_ptr<ps::CheckpointParams> checkpoint_;
};

TEST_F(CheckpointHealthTest, CoverageCountsTheRowsInTheCheckpoint) {
  const std::vector<uint64_t> catalog = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  auto coverage = RowCoverage(*checkpoint_, 0, catalog);
  ASSERT_TRUE(coverage.ok()) << coverage.status();
  EXPECT_DOUBLE_EQ(*coverage, 0.8);
  EXPECT_DOUBLE_EQ(*RowCoverage(*checkpoint_, 0, std::vector<uint64_t>{4, 9}), 0.0);
  EXPECT_TRUE(std::isnan(*RowCoverage(*checkpoint_, 0, {})));
  EXPECT_EQ(RowCoverage(*checkpoint_, 1, catalog).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(CheckpointHealthTest, ForEachRowWalksEveryServersRowsOnce) {
  std::vector<uint64_t> seen;
  ASSERT_TRUE(checkpoint_
                  ->ForEachRow(0, 3,
                               [&](absl::Span<const uint64_t> keys, const float* values) {
                                 EXPECT_LE(keys.size(), 3u);
                                 for (size_t i = 0; i < keys.size(); ++i) {
                                   EXPECT_FLOAT_EQ(values[i * 4], 0.6f * keys[i]);
                                   seen.push_back(keys[i]);
                                 }
                                 return absl::OkStatus();
                               })
                  .ok());
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<uint64_t>{1, 2, 3, 5, 6, 7, 8, 10}));
  auto stop = [](absl::Span<const uint64_t>, const float*) { return absl::AbortedError("stop"); };
  EXPECT_EQ(checkpoint_->ForEachRow(0, 3, stop).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(checkpoint_->ForEachRow(1, 3, stop).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(checkpoint_->ForEachRow(0, 0, stop).code(), absl::StatusCode::kInvalidArgument);
}

// The norms of the stored rows: 1, 2, 3, 5, 6, 7, 8, 10.
TEST_F(CheckpointHealthTest, TableRowNormsAreThoseOfTheStoredRows) {
  auto d = TableRowNorms(*checkpoint_, 0);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->rows, 8);
  const std::array<double, 7> want = NormQuantiles({1, 2, 3, 5, 6, 7, 8, 10});
  for (int i = 0; i < 7; ++i) EXPECT_NEAR(d->quantiles[i], want[i], 1e-5) << i;
  EXPECT_NEAR(d->quantiles[0], 1, 1e-6);
  EXPECT_NEAR(d->quantiles[6], 10, 1e-5);
  ASSERT_EQ(d->edges.size(), static_cast<size_t>(kNormHistogramBins + 1));
  EXPECT_NEAR(d->edges.front(), 1, 1e-6);
  EXPECT_NEAR(d->edges.back(), 10, 1e-5);
  // Bins of width 0.45 from 1: norm k falls in bin floor((k - 1) / 0.45), 10 in the last.
  std::vector<int64_t> want_counts(kNormHistogramBins, 0);
  for (double k : {1, 2, 3, 5, 6, 7, 8}) ++want_counts[static_cast<int>((k - 1) / 0.45 + 1e-9)];
  ++want_counts.back();
  EXPECT_EQ(d->counts, want_counts);
  EXPECT_EQ(TableRowNorms(*checkpoint_, 1).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace towerps::index
