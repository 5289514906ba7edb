#include "index/exact_topk.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <tuple>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace towerps::index {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

struct Csr {
  std::vector<int64_t> offsets;
  std::vector<int32_t> ids;
};

// Random exclusion lists (unsorted, with duplicates) of 0..max_len items each.
Csr RandomExclusions(int64_t n, int64_t m, int max_len, std::mt19937* rng) {
  Csr csr;
  csr.offsets.push_back(0);
  std::uniform_int_distribution<int> len(0, max_len);
  std::uniform_int_distribution<int32_t> item(0, static_cast<int32_t>(m - 1));
  for (int64_t q = 0; q < n; ++q) {
    const int l = len(*rng);
    for (int i = 0; i < l; ++i) csr.ids.push_back(item(*rng));
    csr.offsets.push_back(static_cast<int64_t>(csr.ids.size()));
  }
  return csr;
}

// Small integers: every dot product is exact in float, so sgemm and the
// reference agree bit for bit and ties are frequent.
std::vector<float> IntegerMatrix(int64_t rows, int d, std::mt19937* rng) {
  std::uniform_int_distribution<int> v(-2, 2);
  std::vector<float> out(rows * d);
  for (float& x : out) x = static_cast<float>(v(*rng));
  return out;
}

// Sorts every candidate by (score desc, id asc), skipping exclusions, and pads.
TopK BruteForce(const std::vector<float>& q, int64_t n, const std::vector<float>& v,
                int64_t m, int d, int k, const Csr& excl) {
  TopK out;
  out.k = k;
  for (int64_t i = 0; i < n; ++i) {
    std::vector<bool> excluded(m, false);
    for (int64_t e = excl.offsets[i]; e < excl.offsets[i + 1]; ++e) excluded[excl.ids[e]] = true;
    std::vector<std::pair<float, int32_t>> all;
    for (int64_t j = 0; j < m; ++j) {
      if (excluded[j]) continue;
      double s = 0;
      for (int c = 0; c < d; ++c) s += double{q[i * d + c]} * v[j * d + c];
      all.push_back({static_cast<float>(s), static_cast<int32_t>(j)});
    }
    std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
      return a.first > b.first || (a.first == b.first && a.second < b.second);
    });
    for (int r = 0; r < k; ++r) {
      out.ids.push_back(r < static_cast<int>(all.size()) ? all[r].second : -1);
      out.scores.push_back(r < static_cast<int>(all.size()) ? all[r].first : kNegInf);
    }
  }
  return out;
}

// (threads, query_block, item_block): odd blocks exercise partial tiles.
class ExactTopKBlocksTest : public ::testing::TestWithParam<std::tuple<int, int, int>> {};

TEST_P(ExactTopKBlocksTest, EqualsBruteForceWithExclusionsAndTies) {
  std::mt19937 rng(7);
  const int64_t n = 61, m = 257;
  const int d = 5;
  const std::vector<float> q = IntegerMatrix(n, d, &rng);
  const std::vector<float> v = IntegerMatrix(m, d, &rng);
  const Csr excl = RandomExclusions(n, m, 30, &rng);
  TopKOptions options;
  std::tie(options.threads, options.query_block, options.item_block) = GetParam();
  for (int k : {1, 10, 100, 257}) {
    auto got = ExactTopK(q.data(), n, v.data(), m, d, k, excl.offsets, excl.ids, options);
    ASSERT_TRUE(got.ok()) << got.status();
    const TopK want = BruteForce(q, n, v, m, d, k, excl);
    EXPECT_EQ(got->k, k);
    EXPECT_EQ(got->ids, want.ids) << "k=" << k;
    EXPECT_EQ(got->scores, want.scores) << "k=" << k;
  }
}

INSTANTIATE_TEST_SUITE_P(Blocks, ExactTopKBlocksTest,
                         ::testing::Values(std::make_tuple(1, 256, 8192),
                                           std::make_tuple(1, 7, 13),
                                           std::make_tuple(2, 8, 64),
                                           std::make_tuple(3, 1, 1000),
                                           std::make_tuple(2, 1000, 1)));

TEST(ExactTopKTest, RandomFloatsMatchReferenceScores) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal;
  const int64_t n = 40, m = 3000;
  const int d = 16, k = 50;
  std::vector<float> q(n * d), v(m * d);
  for (float& x : q) x = normal(rng);
  for (float& x : v) x = normal(rng);
  const Csr excl = RandomExclusions(n, m, 100, &rng);
  TopKOptions options;
  options.threads = 2;
  options.query_block = 16;
  options.item_block = 700;
  auto got = ExactTopK(q.data(), n, v.data(), m, d, k, excl.offsets, excl.ids, options);
  ASSERT_TRUE(got.ok()) << got.status();
  const TopK want = BruteForce(q, n, v, m, d, k, excl);
  // sgemm rounds differently from the double reference: compare scores rank by
  // rank and require the same items wherever neighbours are not near-ties.
  int mismatched = 0;
  for (int64_t i = 0; i < n * k; ++i) {
    EXPECT_NEAR(got->scores[i], want.scores[i], 1e-4);
    mismatched += got->ids[i] != want.ids[i];
  }
  EXPECT_LE(mismatched, 2);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t e = excl.offsets[i]; e < excl.offsets[i + 1]; ++e) {
      EXPECT_THAT(got->Ids(i), ::testing::Not(::testing::Contains(excl.ids[e])));
    }
  }
}

TEST(ExactTopKTest, ThreadedCallRestoresOpenBlasThreadCount) {
  std::mt19937 rng(5);
  const std::vector<float> q = IntegerMatrix(20, 4, &rng);
  const std::vector<float> v = IntegerMatrix(30, 4, &rng);
  const int before = openblas_get_num_threads();
  TopKOptions options;
  options.threads = 2;
  options.query_block = 4;
  ASSERT_TRUE(ExactTopK(q.data(), 20, v.data(), 30, 4, 5, {}, {}, options).ok());
  EXPECT_EQ(openblas_get_num_threads(), before);
}

TEST(ExactTopKTest, NoExclusionsAndZeroQueries) {
  const std::vector<float> q = {1, 0, 0, 1};
  const std::vector<float> v = {0.5f, 0.1f, 0.9f, 0.2f, 0.1f, 0.8f};
  auto got = ExactTopK(q.data(), 2, v.data(), 3, 2, 2, {}, {});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_THAT(got->ids, ElementsAre(1, 0, 2, 1));
  EXPECT_THAT(got->scores, ElementsAre(0.9f, 0.5f, 0.8f, 0.2f));

  auto empty = ExactTopK(nullptr, 0, v.data(), 3, 2, 2, {}, {});
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->num_queries(), 0);
}

TEST(ExactTopKTest, PadsWhenExclusionsLeaveFewerThanK) {
  const std::vector<float> q = {1, 0};
  const std::vector<float> v = {3, 0, 2, 0, 1, 0};
  const std::vector<int64_t> offsets = {0, 2};
  const std::vector<int32_t> ids = {0, 2};
  auto got = ExactTopK(q.data(), 1, v.data(), 3, 2, 3, offsets, ids);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_THAT(got->ids, ElementsAre(1, -1, -1));
  EXPECT_EQ(got->scores[0], 2.0f);
  EXPECT_EQ(got->scores[1], kNegInf);
}

TEST(ExactTopKTest, BadInputIsInvalidArgument) {
  const std::vector<float> q = {1, 0};
  std::vector<float> v = {1, 0, 0, 1};
  const std::vector<int64_t> offsets = {0, 1};
  const std::vector<int32_t> ok_ids = {1};
  const std::vector<int32_t> bad_ids = {2};
  auto expect_invalid = [](const absl::StatusOr<TopK>& r, const char* substr) {
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
    EXPECT_THAT(r.status().message(), HasSubstr(substr));
  };
  expect_invalid(ExactTopK(q.data(), 1, v.data(), 2, 2, 3, offsets, ok_ids), "k = 3");
  expect_invalid(ExactTopK(q.data(), 1, v.data(), 2, 2, 0, offsets, ok_ids), "k = 0");
  expect_invalid(ExactTopK(q.data(), 1, v.data(), 2, 0, 1, offsets, ok_ids), "dimension");
  expect_invalid(ExactTopK(q.data(), 1, v.data(), 0, 2, 1, offsets, ok_ids), "item count");
  expect_invalid(ExactTopK(q.data(), -1, v.data(), 2, 2, 1, offsets, ok_ids), "query count");
  expect_invalid(ExactTopK(q.data(), 1, nullptr, 2, 2, 1, offsets, ok_ids), "null");
  expect_invalid(ExactTopK(q.data(), 1, v.data(), 2, 2, 1, offsets, bad_ids), "item 2");
  const std::vector<int64_t> short_offsets = {0};
  expect_invalid(ExactTopK(q.data(), 1, v.data(), 2, 2, 1, short_offsets, ok_ids),
                 "offsets has 1");
  const std::vector<int64_t> long_end = {0, 2};
  expect_invalid(ExactTopK(q.data(), 1, v.data(), 2, 2, 1, long_end, ok_ids), "offsets end");
  TopKOptions bad_options;
  bad_options.threads = 0;
  expect_invalid(ExactTopK(q.data(), 1, v.data(), 2, 2, 1, offsets, ok_ids, bad_options),
                 "threads");
  v[3] = std::numeric_limits<float>::quiet_NaN();
  expect_invalid(ExactTopK(q.data(), 1, v.data(), 2, 2, 1, offsets, ok_ids), "items row 1");
}

TEST(PopularityTopKTest, RanksByCountWithExclusionsAndTies) {
  // Items 1 and 3 tie (count 5): the lower row comes first.
  const std::vector<double> counts = {2, 5, 0, 5, 9, 1};
  const std::vector<int64_t> offsets = {0, 0, 2, 6};
  const std::vector<int32_t> excluded = {4, 1, 0, 1, 3, 4};
  auto got = PopularityTopK(counts, 3, 4, offsets, excluded);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_THAT(got->Ids(0), ElementsAre(4, 1, 3, 0));
  EXPECT_THAT(got->Ids(1), ElementsAre(3, 0, 5, 2));
  EXPECT_THAT(got->Ids(2), ElementsAre(5, 2, -1, -1));
  EXPECT_FLOAT_EQ(got->scores[0], std::log1p(9.0));
  EXPECT_FLOAT_EQ(got->scores[3], std::log1p(2.0));
}

TEST(PopularityTopKTest, ThreadedBlocksAgreeWithOneThread) {
  std::mt19937 rng(3);
  const int64_t n = 50, m = 400;
  std::vector<double> counts(m);
  std::uniform_int_distribution<int> c(0, 20);
  for (double& x : counts) x = c(rng);
  const Csr excl = RandomExclusions(n, m, 40, &rng);
  auto one = PopularityTopK(counts, n, 30, excl.offsets, excl.ids);
  TopKOptions options;
  options.threads = 2;
  options.query_block = 3;
  options.item_block = 37;
  auto two = PopularityTopK(counts, n, 30, excl.offsets, excl.ids, options);
  ASSERT_TRUE(one.ok() && two.ok());
  EXPECT_EQ(one->ids, two->ids);
}

TEST(PopularityTopKTest, BadCountsAreInvalidArgument) {
  const std::vector<double> negative = {1, -1};
  EXPECT_EQ(PopularityTopK(negative, 1, 1, {}, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::vector<double> nan = {1, std::nan("")};
  EXPECT_EQ(PopularityTopK(nan, 1, 1, {}, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PopularityTopK({}, 1, 1, {}, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace towerps::index
