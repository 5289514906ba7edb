#include "models/layers.h"

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

TEST(ParamStoreTest, LayoutIsFlatAndNamed) {
  ParamStore<float> store;
  Linear<float> a(&store, "a", 3, 2);
  Linear<float> b(&store, "b", 2, 4);
  ASSERT_EQ(store.layout().size(), 4u);
  EXPECT_EQ(store.layout()[0].name, "a/w");
  EXPECT_EQ(store.layout()[1].ref.offset, 6u);
  EXPECT_EQ(store.layout()[3].name, "b/b");
  EXPECT_EQ(store.size(), 6u + 2 + 8 + 4);
  EXPECT_EQ(store.grads().size(), store.size());
  ASSERT_TRUE(store.Find("b/w").has_value());
  EXPECT_EQ(store.Find("b/w")->offset, 8u);
  EXPECT_FALSE(store.Find("c/w").has_value());
  EXPECT_FALSE(store.SetValues(std::vector<float>(3)).ok());
  std::vector<float> v(store.size(), 2.0f);
  ASSERT_TRUE(store.SetValues(v).ok());
  EXPECT_EQ(store.Value(b.bias())(0, 3), 2.0f);
}

TEST(ParamStoreTest, InitIsDeterministicAndBounded) {
  ParamStore<float> s1, s2;
  ParamRef r1 = s1.Add("w", 10, 20), r2 = s2.Add("w", 10, 20);
  s1.InitGlorot(r1, 7);
  s2.InitGlorot(r2, 7);
  EXPECT_EQ(s1.Value(r1), s2.Value(r2));
  EXPECT_LE(s1.Value(r1).cwiseAbs().maxCoeff(), std::sqrt(6.0 / 30.0));
  EXPECT_GT(s1.Value(r1).cwiseAbs().maxCoeff(), 0.3);
  s2.InitGlorot(r2, 8);
  EXPECT_NE(s1.Value(r1), s2.Value(r2));
}

TEST(LinearTest, ForwardMatchesFormula) {
  ParamStore<double> store;
  Linear<double> lin(&store, "l", 3, 2);
  store.Value(lin.weight()) << 1, 2, 3, 4, 5, 6;
  store.Value(lin.bias()) << 0.5, -1;
  Mat<double> x(2, 3);
  x << 1, 0, -1, 2, 1, 0;
  const Mat<double>& y = lin.Forward(View(x));
  Mat<double> want(2, 2);
  want << 1 - 5 + 0.5, 2 - 6 - 1, 2 + 3 + 0.5, 4 + 4 - 1;
  EXPECT_TRUE(y.isApprox(want)) << y;
}

TEST(LinearTest, GradientCheckAndAccumulation) {
  ParamStore<double> store;
  Linear<double> lin(&store, "l", 5, 3);
  lin.Init(1);
  store.Value(lin.bias()).setRandom();
  Mat<double> x = RandomMat(4, 5, 2), r = RandomMat(4, 3, 3);
  auto objective = [&] { return Project(lin.Forward(View(x)), r); };
  store.ZeroGrads();
  lin.Forward(View(x));
  Mat<double> dx = lin.Backward(View(r));
  std::vector<double> grads = Copy(store.grads());
  ExpectGradientMatches("dx", Span(x), Span(dx), objective);
  ExpectGradientMatches("params", store.values(), grads, objective);
  // A second Backward adds, and want_dx = false skips dx.
  lin.Forward(View(x));
  EXPECT_EQ(lin.Backward(View(r), /*want_dx=*/false).size(), 0);
  for (size_t k = 0; k < grads.size(); ++k) EXPECT_DOUBLE_EQ(store.grads()[k], 2 * grads[k]);
}

class ActivationTest : public ::testing::TestWithParam<ActivationKind> {};

TEST_P(ActivationTest, GradientCheck) {
  Activation<double> act(GetParam());
  Mat<double> x = RandomMat(3, 7, 4, 3.0), r = RandomMat(3, 7, 5);
  auto objective = [&] { return Project(act.Forward(View(x)), r); };
  act.Forward(View(x));
  Mat<double> dx = act.Backward(View(r));
  ExpectGradientMatches(ActivationName(GetParam()), Span(x), Span(dx), objective);
}

INSTANTIATE_TEST_SUITE_P(All, ActivationTest,
                         ::testing::Values(ActivationKind::kIdentity, ActivationKind::kRelu,
                                           ActivationKind::kSilu));

TEST(ActivationTest, Values) {
  Mat<double> x(1, 3);
  x << -2, 0, 1.5;
  Activation<double> relu(ActivationKind::kRelu), silu(ActivationKind::kSilu);
  Mat<double> want_relu(1, 3), want_silu(1, 3);
  want_relu << 0, 0, 1.5;
  want_silu << -2 / (1 + std::exp(2.0)), 0, 1.5 / (1 + std::exp(-1.5));
  EXPECT_TRUE(relu.Forward(View(x)).isApprox(want_relu));
  EXPECT_TRUE(silu.Forward(View(x)).isApprox(want_silu));
  EXPECT_FALSE(ParseActivation("tanh").ok());
  EXPECT_EQ(*ParseActivation("silu"), ActivationKind::kSilu);
}

TEST(LayerNormTest, GradientCheckAndConstantRows) {
  ParamStore<double> store;
  LayerNorm<double> ln(&store, "ln", 5);
  ln.Init();
  for (double& v : store.values()) v += 0.3;  // gamma != 1, beta != 0
  Mat<double> x = RandomMat(4, 5, 6, 2.0), r = RandomMat(4, 5, 7);
  auto objective = [&] { return Project(ln.Forward(View(x)), r); };
  store.ZeroGrads();
  ln.Forward(View(x));
  Mat<double> dx = ln.Backward(View(r));
  std::vector<double> grads = Copy(store.grads());
  ExpectGradientMatches("dx", Span(x), Span(dx), objective);
  ExpectGradientMatches("params", store.values(), grads, objective);
  // Rows come out with mean beta-ish and unit spread; a constant row maps to beta.
  x.row(0).setConstant(3.0);
  const Mat<double>& y = ln.Forward(View(x));
  for (int j = 0; j < 5; ++j) EXPECT_NEAR(y(0, j), 0.3, 1e-9);
}

TEST(CrossLayerTest, ForwardMatchesFormula) {
  ParamStore<double> store;
  CrossLayer<double> cross(&store, "c", 4);
  cross.Init(3);
  store.Value(store.Find("c/b").value()).setRandom();
  Mat<double> x0 = RandomMat(3, 4, 6), xl = RandomMat(3, 4, 7);
  Mat<double> u = xl * store.Value(store.Find("c/w").value());
  u.rowwise() += store.Value(store.Find("c/b").value()).row(0);
  Mat<double> want = (x0.array() * u.array() + xl.array()).matrix();
  EXPECT_TRUE(cross.Forward(View(x0), View(xl)).isApprox(want));
}

TEST(CrossLayerTest, GradientCheck) {
  ParamStore<double> store;
  CrossLayer<double> cross(&store, "c", 6);
  cross.Init(3, 1.0);
  store.Value(store.Find("c/b").value()).setRandom();
  Mat<double> x0 = RandomMat(5, 6, 8), xl = RandomMat(5, 6, 9), r = RandomMat(5, 6, 10);
  auto objective = [&] { return Project(cross.Forward(View(x0), View(xl)), r); };
  store.ZeroGrads();
  cross.Forward(View(x0), View(xl));
  Mat<double> dx0 = Mat<double>::Zero(5, 6);
  Mat<double> dxl = cross.Backward(View(r), &dx0);
  std::vector<double> grads = Copy(store.grads());
  ExpectGradientMatches("dx0", Span(x0), Span(dx0), objective);
  ExpectGradientMatches("dxl", Span(xl), Span(dxl), objective);
  ExpectGradientMatches("params", store.values(), grads, objective);
}

TEST(L2NormalizeTest, UnitRowsAndZeroRowStaysFinite) {
  L2Normalize<double> norm(1e-12);
  Mat<double> x(2, 3);
  x << 3, 0, 4, 0, 0, 0;
  const Mat<double>& y = norm.Forward(View(x));
  EXPECT_NEAR(y(0, 0), 0.6, 1e-9);
  EXPECT_NEAR(y(0, 2), 0.8, 1e-9);
  EXPECT_TRUE(y.row(1).isZero());
  Mat<double> dy = Mat<double>::Ones(2, 3);
  EXPECT_TRUE(norm.Backward(View(dy)).allFinite());
}

TEST(L2NormalizeTest, GradientCheck) {
  L2Normalize<double> norm(1e-6);
  Mat<double> x = RandomMat(4, 5, 11), r = RandomMat(4, 5, 12);
  auto objective = [&] { return Project(norm.Forward(View(x)), r); };
  norm.Forward(View(x));
  Mat<double> dx = norm.Backward(View(r));
  ExpectGradientMatches("dx", Span(x), Span(dx), objective);
}

TEST(LayersTest, FloatMatchesDouble) {
  // The float instantiation (the one training runs) computes the same thing.
  ParamStore<float> sf;
  ParamStore<double> sd;
  CrossLayer<float> cf(&sf, "c", 8);
  CrossLayer<double> cd(&sd, "c", 8);
  cf.Init(5);
  cd.Init(5);
  Mat<double> x = RandomMat(16, 8, 13);
  Mat<float> xf = x.cast<float>();
  const Mat<float>& yf = cf.Forward(View(xf), View(xf));
  const Mat<double>& yd = cd.Forward(View(x), View(x));
  EXPECT_LT((yf.cast<double>() - yd).cwiseAbs().maxCoeff(), 1e-5);
}

}  // namespace
}  // namespace towerps::models
