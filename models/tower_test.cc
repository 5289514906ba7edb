#include "models/tower.h"

#include <vector>

#include "gtest/gtest.h"
#include "models/grad_check.h"

namespace towerps::models {
namespace {

using testing::ExpectGradientMatches;
using testing::Project;
using testing::RandomMat;
using testing::Span;

TowerConfig SmallConfig(ActivationKind act) {
  TowerConfig c;
  c.input_dims = {3, 4};
  c.mlp_hidden = {6, 5};  // 5 != 7: exercises the mlp_to_input projection
  c.cross_layers = 2;
  c.output_dim = 3;
  c.activation = act;
  c.cross_init_scale = 1.0;
  return c;
}

TEST(TowerConfigTest, Validate) {
  TowerConfig c = SmallConfig(ActivationKind::kRelu);
  EXPECT_TRUE(c.Validate().ok());
  EXPECT_EQ(c.input_dim(), 7);
  TowerConfig bad = c;
  bad.input_dims = {};
  EXPECT_FALSE(bad.Validate().ok());
  bad = c;
  bad.mlp_hidden = {4, 0};
  EXPECT_FALSE(bad.Validate().ok());
  bad = c;
  bad.cross_layers = -1;
  EXPECT_FALSE(bad.Validate().ok());
  bad = c;
  bad.output_dim = 0;
  EXPECT_FALSE(bad.Validate().ok());
  ParamStore<float> store;
  EXPECT_FALSE(Tower<float>::Create(bad, "t", &store).ok());
}

TEST(TowerConfigTest, FlopsPerExample) {
  TowerConfig c;
  c.input_dims = {256};
  // MLP 256->512->256 (no extra projection), 4 cross 256x256, proj 256->128;
  // 6 FLOPs per weight per example (forward, weight grad, input grad).
  const double weights = 256.0 * 512 + 512.0 * 256 + 4 * 256.0 * 256 + 256.0 * 128;
  EXPECT_DOUBLE_EQ(TowerFlopsPerExample(c), 6 * weights);
  c.mlp_hidden = {100};
  EXPECT_DOUBLE_EQ(TowerFlopsPerExample(c),
                   6 * (256.0 * 100 + 100.0 * 256 + 4 * 256.0 * 256 + 256.0 * 128));
}

TEST(TowerTest, LayoutNamesEveryLayer) {
  ParamStore<float> store;
  auto tower = Tower<float>::Create(SmallConfig(ActivationKind::kRelu), "user", &store);
  ASSERT_TRUE(tower.ok());
  std::vector<std::string> names;
  for (const ParamInfo& p : store.layout()) names.push_back(p.name);
  EXPECT_EQ(names, (std::vector<std::string>{
                       "user/mlp0/w", "user/mlp0/b", "user/mlp1/w", "user/mlp1/b",
                       "user/mlp_to_input/w", "user/mlp_to_input/b", "user/cross0/w",
                       "user/cross0/b", "user/cross1/w", "user/cross1/b", "user/proj/w",
                       "user/proj/b"}));
}

class TowerGradTest : public ::testing::TestWithParam<ActivationKind> {};

TEST_P(TowerGradTest, GradientCheckInputsAndAllParameters) {
  ParamStore<double> store;
  auto tower_or = Tower<double>::Create(SmallConfig(GetParam()), "t", &store);
  ASSERT_TRUE(tower_or.ok());
  Tower<double>& tower = **tower_or;
  tower.Init(42);
  // Non-zero biases so every path of the gradient is exercised.
  for (const ParamInfo& p : store.layout()) {
    if (p.ref.rows == 1) store.InitUniform(p.ref, 0.3, p.ref.offset);
  }
  Mat<double> a = RandomMat(4, 3, 1), b = RandomMat(4, 4, 2), r = RandomMat(4, 3, 3);
  auto objective = [&] {
    std::vector<ConstMatRef<double>> blocks = {View(a), View(b)};
    return Project(tower.Forward(blocks), r);
  };
  store.ZeroGrads();
  objective();
  tower.Backward(View(r));
  Mat<double> da = tower.InputGrad(0), db = tower.InputGrad(1);
  std::vector<double> grads(store.grads().begin(), store.grads().end());
  ExpectGradientMatches("block0", Span(a), Span(da), objective);
  ExpectGradientMatches("block1", Span(b), Span(db), objective);
  ExpectGradientMatches("params", store.values(), grads, objective);
}

INSTANTIATE_TEST_SUITE_P(Activations, TowerGradTest,
                         ::testing::Values(ActivationKind::kRelu, ActivationKind::kSilu));

TEST(TowerTest, BranchlessVariantsGradientCheck) {
  // MLP only, cross only, neither; no L2 normalisation.
  for (int variant = 0; variant < 3; ++variant) {
    TowerConfig c = SmallConfig(ActivationKind::kSilu);
    c.input_dims = {5};
    c.l2_normalize = variant != 1;
    if (variant != 0) c.mlp_hidden = {};
    if (variant != 1) c.cross_layers = 0;
    ParamStore<double> store;
    auto tower = std::move(Tower<double>::Create(c, "t", &store)).value();
    tower->Init(variant);
    Mat<double> x = RandomMat(3, 5, 10 + variant), r = RandomMat(3, 3, 20 + variant);
    auto objective = [&] { return Project(tower->Forward(View(x)), r); };
    store.ZeroGrads();
    objective();
    tower->Backward(View(r));
    Mat<double> dx = tower->input_grad();
    std::vector<double> grads(store.grads().begin(), store.grads().end());
    ExpectGradientMatches("dx", Span(x), Span(dx), objective);
    ExpectGradientMatches("params", store.values(), grads, objective);
  }
}

TEST(TowerTest, OutputRowsAreUnitAndFloatMatchesDouble) {
  TowerConfig c = SmallConfig(ActivationKind::kRelu);
  c.input_dims = {7};
  ParamStore<float> sf;
  ParamStore<double> sd;
  auto tf = std::move(Tower<float>::Create(c, "t", &sf)).value();
  auto td = std::move(Tower<double>::Create(c, "t", &sd)).value();
  tf->Init(9);
  td->Init(9);
  Mat<double> x = RandomMat(8, 7, 4);
  Mat<float> xf = x.cast<float>();
  const Mat<double>& yd = td->Forward(View(x));
  const Mat<float>& yf = tf->Forward(View(xf));
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(yd.row(i).norm(), 1.0, 1e-9);
  EXPECT_LT((yf.cast<double>() - yd).cwiseAbs().maxCoeff(), 1e-5);
}

}  // namespace
}  // namespace towerps::models
