#include "models/attention.h"

#include <vector>

#include "gtest/gtest.h"
#include "models/grad_check.h"
#include "models/param_store.h"

namespace towerps::models {
namespace {

using testing::ExpectGradientMatches;
using testing::Project;
using testing::RandomMat;
using testing::Span;

std::vector<double> Copy(std::span<const double> s) { return {s.begin(), s.end()}; }

// Lengths covering the masking cases: partial, empty, full, one.
const std::vector<int32_t> kLengths = {3, 0, 4, 1};
constexpr int kLen = 4;

TEST(MultiHeadSelfAttentionTest, GradientCheckWithPaddingMask) {
  ParamStore<double> store;
  MultiHeadSelfAttention<double> attn(&store, "a", 6, 2);
  attn.Init(3);
  for (double& v : store.values()) v *= 2;  // sharper softmax than Glorot alone
  const int n = static_cast<int>(kLengths.size()) * kLen;
  Mat<double> x = RandomMat(n, 6, 1), r = RandomMat(n, 6, 2);
  // Only real query rows count in the objective (padding queries are never read).
  for (size_t b = 0; b < kLengths.size(); ++b) {
    for (int p = kLengths[b]; p < kLen; ++p) r.row(b * kLen + p).setZero();
  }
  auto objective = [&] { return Project(attn.Forward(View(x), kLen, kLengths), r); };
  store.ZeroGrads();
  attn.Forward(View(x), kLen, kLengths);
  Mat<double> dx = attn.Backward(View(r));
  std::vector<double> grads = Copy(store.grads());
  ExpectGradientMatches("dx", Span(x), Span(dx), objective);
  ExpectGradientMatches("params", store.values(), grads, objective);
  // Padding rows are masked keys: changing them leaves every real query unchanged.
  Mat<double> y = attn.Forward(View(x), kLen, kLengths);
  x.row(0 * kLen + 3).setConstant(9.0);
  x.row(1 * kLen + 0).setConstant(-9.0);
  Mat<double> y2 = attn.Forward(View(x), kLen, kLengths);
  EXPECT_TRUE(y.topRows(3).isApprox(y2.topRows(3)));
  EXPECT_TRUE(y.middleRows(2 * kLen, kLen).isApprox(y2.middleRows(2 * kLen, kLen)));
}

struct EncoderCase {
  SequencePool pool;
  int blocks;
};

class SequenceEncoderTest : public ::testing::TestWithParam<EncoderCase> {};

TEST_P(SequenceEncoderTest, GradientCheck) {
  SequenceEncoderConfig c;
  c.dim = 4;
  c.max_len = kLen;
  c.heads = 2;
  c.blocks = GetParam().blocks;
  c.ffn_dim = 5;
  c.pool = GetParam().pool;
  ParamStore<double> store;
  auto enc = std::move(SequenceEncoder<double>::Create(c, "seq", &store)).value();
  enc->Init(7);
  // Non-trivial norms so their gradients are exercised.
  for (double& v : store.values()) v += 0.1;
  ASSERT_EQ(store.size(), SequenceEncoderParamCount(c));
  const int n = static_cast<int>(kLengths.size()) * kLen;
  Mat<double> rows = RandomMat(n, 4, 11), r = RandomMat(static_cast<int>(kLengths.size()), 4, 12);
  auto objective = [&] { return Project(enc->Forward(View(rows), kLengths), r); };
  store.ZeroGrads();
  enc->Forward(View(rows), kLengths);
  enc->Backward(View(r));
  Mat<double> d_rows = enc->input_grad();
  std::vector<double> grads = Copy(store.grads());
  testing::Tolerance tol;
  tol.rtol = 1e-4;
  tol.atol = 1e-7;
  ExpectGradientMatches("d_rows", Span(rows), Span(d_rows), objective, tol);
  ExpectGradientMatches("params", store.values(), grads, objective, tol);
  // Padding rows get no gradient and do not change the output.
  for (size_t b = 0; b < kLengths.size(); ++b) {
    for (int p = kLengths[b]; p < kLen; ++p) {
      EXPECT_EQ(d_rows.row(b * kLen + p).cwiseAbs().sum(), 0.0) << b << "," << p;
      rows.row(b * kLen + p).setConstant(5.0);
    }
  }
  Mat<double> before = enc->Forward(View(rows), kLengths);
  rows(1 * kLen, 0) = -3;  // example 1 has no history
  EXPECT_TRUE(before.isApprox(enc->Forward(View(rows), kLengths)));
}

INSTANTIATE_TEST_SUITE_P(All, SequenceEncoderTest,
                         ::testing::Values(EncoderCase{SequencePool::kMean, 1},
                                           EncoderCase{SequencePool::kMean, 2},
                                           EncoderCase{SequencePool::kLast, 1},
                                           EncoderCase{SequencePool::kLast, 2}));

TEST(SequenceEncoderTest, OrderMattersThroughPositions) {
  SequenceEncoderConfig c;
  c.dim = 8;
  c.max_len = 3;
  c.ffn_dim = 8;
  ParamStore<double> store;
  auto enc = std::move(SequenceEncoder<double>::Create(c, "seq", &store)).value();
  enc->Init(1);
  std::vector<int32_t> lengths = {3};
  Mat<double> rows = RandomMat(3, 8, 5);
  Mat<double> a = enc->Forward(View(rows), lengths);
  rows.row(0).swap(rows.row(2));
  Mat<double> b = enc->Forward(View(rows), lengths);
  EXPECT_GT((a - b).norm(), 1e-6);  // mean pooling alone would not see the swap
}

TEST(SequenceEncoderConfigTest, RefusesBadValues) {
  SequenceEncoderConfig c;
  EXPECT_TRUE(c.Validate().ok());
  auto bad = [](auto edit) {
    SequenceEncoderConfig c;
    edit(c);
    return !c.Validate().ok();
  };
  EXPECT_TRUE(bad([](auto& c) { c.heads = 3; }));  // 32 % 3
  EXPECT_TRUE(bad([](auto& c) { c.heads = 0; }));
  EXPECT_TRUE(bad([](auto& c) { c.max_len = 0; }));
  EXPECT_TRUE(bad([](auto& c) { c.max_len = 5000; }));
  EXPECT_TRUE(bad([](auto& c) { c.blocks = 0; }));
  EXPECT_TRUE(bad([](auto& c) { c.blocks = 5; }));
  EXPECT_TRUE(bad([](auto& c) { c.ffn_dim = 0; }));
  EXPECT_TRUE(bad([](auto& c) { c.dim = 0; }));
  EXPECT_FALSE(ParseSequencePool("max").ok());
  EXPECT_EQ(*ParseSequencePool("last"), SequencePool::kLast);
  ParamStore<float> store;
  c.heads = 5;
  EXPECT_FALSE(SequenceEncoder<float>::Create(c, "s", &store).ok());
}

}  // namespace
}  // namespace towerps::models
