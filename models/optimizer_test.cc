#include "models/optimizer.h"

#include <cmath>
#include <limits>
#include <vector>

#include "gtest/gtest.h"

namespace towerps::models {
namespace {

std::unique_ptr<DenseOptimizer> Make(const DenseOptimizerOptions& o, size_t n) {
  auto opt = DenseOptimizer::Create(o, n);
  EXPECT_TRUE(opt.ok()) << opt.status();
  return std::move(opt).value();
}

DenseOptimizerOptions Sgd(float momentum = 0, float wd = 0, float clip = 0) {
  DenseOptimizerOptions o;
  o.kind = DenseOptimizerKind::kSgd;
  o.momentum = momentum;
  o.weight_decay = wd;
  o.clip_global_norm = clip;
  return o;
}

// Table of hand-computed SGD steps: p, g, lr, options -> p after two steps
// with the same gradient.
struct SgdCase {
  const char* name;
  DenseOptimizerOptions options;
  std::vector<float> want_after_two;
};

TEST(SgdTest, HandComputedSteps) {
  const std::vector<float> p0 = {1.0f, -2.0f};
  const std::vector<float> g = {0.5f, 1.0f};
  const float lr = 0.1f;
  const SgdCase cases[] = {
      // p - 2 lr g
      {"plain", Sgd(), {1.0f - 0.1f, -2.0f - 0.2f}},
      // m1 = g, m2 = 1.9 g: p - lr (1 + 1.9) g
      {"momentum", Sgd(0.9f), {1.0f - 0.29f * 0.5f, -2.0f - 0.29f}},
      // g' = g + 0.1 p each step: p1 = p - 0.1 (g + 0.1 p), p2 = p1 - 0.1 (g + 0.1 p1)
      {"weight_decay",
       Sgd(0, 0.1f),
       {0.94f - 0.1f * (0.5f + 0.094f), -2.08f - 0.1f * (1.0f - 0.208f)}},
  };
  for (const SgdCase& c : cases) {
    auto opt = Make(c.options, 2);
    std::vector<float> p = p0;
    ASSERT_TRUE(opt->Step(p, g, lr).ok());
    ASSERT_TRUE(opt->Step(p, g, lr).ok());
    EXPECT_EQ(opt->step(), 2);
    for (int i = 0; i < 2; ++i) EXPECT_NEAR(p[i], c.want_after_two[i], 1e-6) << c.name << i;
  }
}

TEST(SgdTest, GlobalNormClipping) {
  auto opt = Make(Sgd(0, 0, 1.0f), 2);
  std::vector<float> p = {0, 0}, g = {3, 4};
  ASSERT_TRUE(opt->Step(p, g, 1.0f).ok());
  EXPECT_NEAR(p[0], -0.6f, 1e-6);
  EXPECT_NEAR(p[1], -0.8f, 1e-6);
  EXPECT_NEAR(opt->last_grad_norm(), 5.0, 1e-9);
  // Below the threshold nothing is scaled.
  g = {0.3f, 0.4f};
  ASSERT_TRUE(opt->Step(p, g, 1.0f).ok());
  EXPECT_NEAR(p[0], -0.9f, 1e-6);
}

TEST(AdamTest, HandComputedSteps) {
  DenseOptimizerOptions o;  // Adam, b1 0.9, b2 0.999, eps 1e-8
  auto opt = Make(o, 1);
  std::vector<float> p = {1.0f};
  ASSERT_TRUE(opt->Step(p, std::vector<float>{0.5f}, 0.01f).ok());
  EXPECT_NEAR(p[0], 0.99f, 1e-6);  // bias-corrected first step moves by lr * sign(g)
  ASSERT_TRUE(opt->Step(p, std::vector<float>{-0.25f}, 0.01f).ok());
  EXPECT_NEAR(p[0], 0.98733663f, 1e-6);
  ASSERT_EQ(opt->state().size(), 2u);
  EXPECT_NEAR(opt->state()[0], 0.02f, 1e-7);        // m
  EXPECT_NEAR(opt->state()[1], 0.00031225f, 1e-8);  // v
}

TEST(AdamTest, DecoupledWeightDecay) {
  DenseOptimizerOptions o;
  o.weight_decay = 0.1f;
  auto opt = Make(o, 2);
  std::vector<float> p = {1.0f, 2.0f}, g = {0.5f, 0.0f};
  ASSERT_TRUE(opt->Step(p, g, 0.01f).ok());
  EXPECT_NEAR(p[0], 1.0f - 0.01f * (1.0f + 0.1f), 1e-6);
  // A zero gradient still decays (decoupled from the adaptive term).
  EXPECT_NEAR(p[1], 2.0f - 0.01f * 0.1f * 2.0f, 1e-6);
}

TEST(OptimizerTest, StateRoundTrip) {
  DenseOptimizerOptions o;
  auto a = Make(o, 3), b = Make(o, 3);
  std::vector<float> pa = {1, 2, 3}, g = {0.1f, -0.2f, 0.3f};
  ASSERT_TRUE(a->Step(pa, g, 0.1f).ok());
  std::vector<float> pb = pa;
  ASSERT_TRUE(b->RestoreState(a->step(), a->state()).ok());
  ASSERT_TRUE(a->Step(pa, g, 0.1f).ok());
  ASSERT_TRUE(b->Step(pb, g, 0.1f).ok());
  EXPECT_EQ(pa, pb);
  EXPECT_FALSE(b->RestoreState(1, std::vector<float>(5)).ok());
}

TEST(OptimizerTest, RejectsBadInput) {
  auto opt = Make(DenseOptimizerOptions{}, 2);
  std::vector<float> p = {1, 2}, g = {1, std::numeric_limits<float>::quiet_NaN()};
  EXPECT_EQ(opt->Step(p, g, 0.1f).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(p, (std::vector<float>{1, 2}));
  EXPECT_EQ(opt->step(), 0);
  std::vector<float> three = {1, 2, 3};
  EXPECT_EQ(opt->Step(p, three, 0.1f).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(opt->Step(p, std::vector<float>{0, 0}, -1.0f).ok());

  DenseOptimizerOptions bad;
  bad.beta1 = 1.0f;
  EXPECT_FALSE(DenseOptimizer::Create(bad, 1).ok());
  bad = Sgd(1.5f);
  EXPECT_FALSE(DenseOptimizer::Create(bad, 1).ok());
  bad = Sgd(0, -1);
  EXPECT_FALSE(DenseOptimizer::Create(bad, 1).ok());
  EXPECT_EQ(*ParseDenseOptimizerKind("adam"), DenseOptimizerKind::kAdam);
  EXPECT_FALSE(ParseDenseOptimizerKind("lamb").ok());
}

}  // namespace
}  // namespace towerps::models
