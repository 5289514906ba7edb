#include "index/metrics.h"

#include <cmath>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace towerps::index {
namespace {

using ::testing::DoubleNear;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TopK MakeTopK(int k, std::vector<int32_t> ids) {
  TopK t;
  t.k = k;
  t.scores.assign(ids.size(), 0.0f);
  t.ids = std::move(ids);
  return t;
}

TEST(ComputeMetricsTest, HandComputedCase) {
  // q0: relevant {7} (listed twice) found at rank 1.
  // q1: relevant {5, 9}, 5 found at rank 1, list padded with -1.
  // q2: no relevant items -> skipped everywhere, coverage included.
  const TopK ranked = MakeTopK(3, {3, 7, 1, 2, 5, -1, 8, 9, 0});
  const std::vector<int64_t> offsets = {0, 2, 4, 4};
  const std::vector<int32_t> relevant = {7, 7, 9, 5};
  const std::vector<int> ks = {1, 3};
  auto m = ComputeMetrics(ranked, offsets, relevant, 10, ks);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->queries, 2);
  EXPECT_EQ(m->skipped_queries, 1);
  const double d1 = 1.0 / std::log2(3.0);  // gain at rank 1 (0.6309)
  EXPECT_THAT(m->recall, ElementsAre(0.0, 0.75));
  // q0: d1 / 1 = 0.630930; q1: d1 / (1 + d1) = 0.386853; mean 0.508891.
  EXPECT_THAT(m->ndcg, ElementsAre(0.0, DoubleNear((d1 + d1 / (1 + d1)) / 2, 1e-12)));
  EXPECT_NEAR(m->ndcg[1], 0.508891, 1e-6);
  EXPECT_THAT(m->hit_rate, ElementsAre(0.0, 1.0));
  // Top-1 items {3, 2}; top-3 items {3, 7, 1, 2, 5}; q2's list does not count.
  EXPECT_THAT(m->coverage, ElementsAre(0.2, 0.5));
}

TEST(ComputeMetricsTest, IdealDcgUsesMinOfRelevantAndK) {
  // Three relevant items, two ranked first: NDCG@2 is perfect, recall 2/3.
  const TopK ranked = MakeTopK(4, {0, 1, 5, 2});
  const std::vector<int64_t> offsets = {0, 3};
  const std::vector<int32_t> relevant = {2, 1, 0};
  const std::vector<int> ks = {2, 4};
  auto m = ComputeMetrics(ranked, offsets, relevant, 6, ks);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_DOUBLE_EQ(m->ndcg[0], 1.0);
  EXPECT_DOUBLE_EQ(m->recall[0], 2.0 / 3.0);
  // @4: DCG = 1 + 1/log2(3) + 1/log2(5), IDCG = 1 + 1/log2(3) + 1/log2(4).
  const double dcg = 1 + 1 / std::log2(3.0) + 1 / std::log2(5.0);
  const double idcg = 1 + 1 / std::log2(3.0) + 0.5;
  EXPECT_NEAR(m->ndcg[1], dcg / idcg, 1e-12);
  EXPECT_DOUBLE_EQ(m->recall[1], 1.0);
  EXPECT_THAT(m->coverage, ElementsAre(2.0 / 6, 4.0 / 6));
}

TEST(ComputeMetricsTest, PerfectAndMissedQueriesAverage) {
  const TopK ranked = MakeTopK(2, {4, 0, 1, 2});
  const std::vector<int64_t> offsets = {0, 1, 2};
  const std::vector<int32_t> relevant = {4, 3};
  const std::vector<int> ks = {1};
  auto m = ComputeMetrics(ranked, offsets, relevant, 5, ks);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_THAT(m->recall, ElementsAre(0.5));
  EXPECT_THAT(m->ndcg, ElementsAre(0.5));
  EXPECT_THAT(m->hit_rate, ElementsAre(0.5));
  EXPECT_THAT(m->coverage, ElementsAre(0.4));
}

TEST(ComputeMetricsTest, JsonAndTable) {
  const TopK ranked = MakeTopK(2, {1, 0});
  const std::vector<int64_t> offsets = {0, 1};
  const std::vector<int32_t> relevant = {1};
  const std::vector<int> ks = {1, 2};
  auto m = ComputeMetrics(ranked, offsets, relevant, 4, ks);
  ASSERT_TRUE(m.ok()) << m.status();
  const std::string json = m->ToJson().ToString();
  EXPECT_THAT(json, HasSubstr("\"recall@1\":1"));
  EXPECT_THAT(json, HasSubstr("\"ndcg@2\":1"));
  EXPECT_THAT(json, HasSubstr("\"hit_rate@2\":1"));
  EXPECT_THAT(json, HasSubstr("\"coverage@1\":0.25"));
  EXPECT_THAT(json, HasSubstr("\"queries\":1"));
  JsonObject prefixed;
  m->AddToJson(&prefixed, "pop_");
  EXPECT_THAT(prefixed.ToString(), HasSubstr("\"pop_recall@2\":1"));

  auto half = ComputeMetrics(MakeTopK(2, {0, 1}), offsets, relevant, 4, ks);
  ASSERT_TRUE(half.ok());
  const std::string table = FormatMetricsTable({{"model", &*m}, {"popularity", &*half}});
  EXPECT_THAT(table, HasSubstr("recall@1"));
  EXPECT_THAT(table, HasSubstr("popularity"));
  EXPECT_THAT(table, HasSubstr("1.0000"));
  EXPECT_THAT(table, HasSubstr("1.58x"));  // ndcg@2: 1 vs 1/log2(3)
  EXPECT_THAT(table, HasSubstr("1.00x"));  // coverage@1: 0.25 vs 0.25
}

TEST(ComputeMetricsTest, BadInputIsInvalidArgument) {
  const TopK ranked = MakeTopK(2, {1, 0, 2, 3});
  const std::vector<int64_t> offsets = {0, 1, 2};
  const std::vector<int32_t> relevant = {1, 2};
  const std::vector<int> ks = {2};
  auto code = [](const absl::StatusOr<RetrievalMetrics>& r) { return r.status().code(); };
  constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;
  const std::vector<int> big_k = {3};
  EXPECT_EQ(code(ComputeMetrics(ranked, offsets, relevant, 4, big_k)), kInvalid);
  EXPECT_EQ(code(ComputeMetrics(ranked, offsets, relevant, 4, {})), kInvalid);
  const std::vector<int64_t> short_offsets = {0, 1};
  EXPECT_EQ(code(ComputeMetrics(ranked, short_offsets, relevant, 4, ks)), kInvalid);
  const std::vector<int32_t> out_of_range = {1, 4};
  EXPECT_EQ(code(ComputeMetrics(ranked, offsets, out_of_range, 4, ks)), kInvalid);
  EXPECT_EQ(code(ComputeMetrics(MakeTopK(2, {1, 7, 2, 3}), offsets, relevant, 4, ks)),
            kInvalid);
  EXPECT_EQ(code(ComputeMetrics(MakeTopK(3, {1, 0, 2, 3}), offsets, relevant, 4, ks)),
            kInvalid);
  EXPECT_EQ(code(ComputeMetrics(ranked, offsets, relevant, 0, ks)), kInvalid);
  EXPECT_TRUE(ComputeMetrics(ranked, offsets, relevant, 4, ks).ok());
}

}  // namespace
}  // namespace towerps::index
