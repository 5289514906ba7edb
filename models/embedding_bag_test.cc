#include "models/embedding_bag.h"

#include <vector>

#include "gtest/gtest.h"
#include "models/grad_check.h"

namespace towerps::models {
namespace {

using testing::ExpectGradientMatches;
using testing::Project;
using testing::RandomMat;
using testing::Span;

TEST(EmbeddingBagTest, MeanWithWeightsMasksAndEmptyLists) {
  Mat<double> rows(3, 2);
  rows << 1, 2, 3, 4, 10, 20;
  // Example 0: rows {0, 1} -> mean; 1: empty; 2: {2, 0} with weights {3, 1};
  // 3: {1} masked out (weight 0) -> zeros.
  std::vector<int64_t> offsets = {0, 2, 2, 4, 5};
  std::vector<int32_t> indices = {0, 1, 2, 0, 1};
  std::vector<double> weights = {1, 1, 3, 1, 0};
  EmbeddingBag<double> bag(Pooling::kMean);
  ASSERT_TRUE(bag.Forward(View(rows), {offsets, indices, weights}).ok());
  Mat<double> want(4, 2);
  want << 2, 3, 0, 0, 7.75, 15.5, 0, 0;
  EXPECT_TRUE(bag.output().isApprox(want)) << bag.output();

  Mat<double> d_pooled(4, 2);
  d_pooled << 1, 1, 5, 5, 4, 8, 9, 9;
  const Mat<double>& d_rows = bag.Backward(View(d_pooled));
  Mat<double> want_d(3, 2);
  want_d << 0.5 + 1, 0.5 + 2, 0.5, 0.5, 3, 6;
  EXPECT_TRUE(d_rows.isApprox(want_d)) << d_rows;
}

TEST(EmbeddingBagTest, SumPoolingWithoutWeights) {
  Mat<double> rows(2, 1);
  rows << 1, 5;
  std::vector<int64_t> offsets = {0, 3};
  std::vector<int32_t> indices = {0, 1, 1};
  EmbeddingBag<double> bag(Pooling::kSum);
  ASSERT_TRUE(bag.Forward(View(rows), {offsets, indices, {}}).ok());
  EXPECT_DOUBLE_EQ(bag.output()(0, 0), 11);
  Mat<double> d(1, 1);
  d << 2;
  EXPECT_DOUBLE_EQ(bag.Backward(View(d))(1, 0), 4);
}

TEST(EmbeddingBagTest, RejectsMalformedLists) {
  Mat<double> rows = Mat<double>::Ones(2, 3);
  EmbeddingBag<double> bag;
  std::vector<int32_t> idx = {0, 1};
  std::vector<int64_t> ok = {0, 1, 2}, not_zero = {1, 1, 2}, decreasing = {0, 2, 1},
                       short_end = {0, 1, 1};
  std::vector<int32_t> out_of_range = {0, 2};
  std::vector<double> neg = {1, -1}, one = {1};
  EXPECT_TRUE(bag.Forward(View(rows), {ok, idx, {}}).ok());
  EXPECT_EQ(bag.Forward(View(rows), {{}, idx, {}}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(bag.Forward(View(rows), {not_zero, idx, {}}).ok());
  EXPECT_FALSE(bag.Forward(View(rows), {decreasing, idx, {}}).ok());
  EXPECT_FALSE(bag.Forward(View(rows), {short_end, idx, {}}).ok());
  EXPECT_FALSE(bag.Forward(View(rows), {ok, out_of_range, {}}).ok());
  EXPECT_FALSE(bag.Forward(View(rows), {ok, idx, neg}).ok());
  EXPECT_FALSE(bag.Forward(View(rows), {ok, idx, one}).ok());
}

TEST(EmbeddingBagTest, GradientCheck) {
  Mat<double> rows = RandomMat(6, 4, 1);
  // Repeated rows within and across lists, an empty list, fractional weights.
  std::vector<int64_t> offsets = {0, 3, 3, 7, 9};
  std::vector<int32_t> indices = {0, 1, 1, 2, 3, 4, 0, 5, 2};
  std::vector<double> weights = {0.5, 1, 2, 0.25, 1, 0, 3, 1, 1};
  for (Pooling pooling : {Pooling::kMean, Pooling::kSum}) {
    EmbeddingBag<double> bag(pooling);
    Mat<double> r = RandomMat(4, 4, 2);
    auto objective = [&] {
      EXPECT_TRUE(bag.Forward(View(rows), {offsets, indices, weights}).ok());
      return Project(bag.output(), r);
    };
    objective();
    Mat<double> d_rows = bag.Backward(View(r));
    ExpectGradientMatches("d_rows", Span(rows), Span(d_rows), objective);
  }
}

}  // namespace
}  // namespace towerps::models
