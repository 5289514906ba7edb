// Every sparse optimizer against a hand-computed reference: two updates of a 4-dim row
// from w0 with gradients g1, g2 at lr 0.1; expected values worked out step by step in
// double precision from the formulas in optimizer.h (e.g. SGD: w = w0 - 0.1 (g1 + g2)).
#include "sparse_emb/optimizer.h"

#include <cmath>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sparse_emb/embedding_table.h"

namespace towerps::sparse_emb {
namespace {

constexpr int kDim = 4;
constexpr float kLr = 0.1f;
const float kW0[kDim] = {0.5f, -0.25f, 1.0f, 0.0f};
const float kG[2][kDim] = {{0.1f, -0.2f, 0.3f, 0.0f}, {0.2f, 0.2f, -0.1f, 0.4f}};

struct OptimizerCase {
  std::string name;
  OptimizerConfig config;
  std::vector<float> want_w;
  std::vector<float> want_state;
};

OptimizerConfig Make(OptimizerKind kind) {
  OptimizerConfig c;
  c.kind = kind;
  return c;
}

std::vector<OptimizerCase> Cases() {
  std::vector<OptimizerCase> cases;
  cases.push_back({"sgd", Make(OptimizerKind::kSgd), {0.47f, -0.25f, 0.98f, -0.04f}, {}});
  OptimizerConfig wd = Make(OptimizerKind::kSgd);
  wd.weight_decay = 0.1f;
  cases.push_back({"sgd_weight_decay", wd, {0.46015f, -0.245225f, 0.9604f, -0.04f}, {}});
  OptimizerConfig clip = Make(OptimizerKind::kSgd);
  clip.clip_norm = 0.1f;  // |g1| = sqrt(0.14), |g2| = 0.5: both scaled to norm 0.1
  cases.push_back(
      {"sgd_clip", clip, {0.49332739f, -0.24865478f, 0.99398216f, -0.008f}, {}});
  OptimizerConfig adagrad = Make(OptimizerKind::kAdagrad);
  adagrad.initial_accumulator = 0.1f;
  cases.push_back({"adagrad",
                   adagrad,
                   {0.41820909f, -0.2436882f, 0.95353596f, -0.078446453f},
                   {0.15f, 0.18f, 0.2f, 0.26f}});
  cases.push_back({"rowwise_adagrad",
                   Make(OptimizerKind::kRowwiseAdagrad),
                   {0.3824965f, -0.20714677f, 0.87166889f, -0.12810252f},
                   {0.0975f}});
  cases.push_back({"adam",
                   Make(OptimizerKind::kAdam),
                   {0.30348181f, -0.15526316f, 0.85997815f, -0.07441368f},
                   {0.029f, 0.002f, 0.017f, 0.04f, 4.999e-05f, 7.996e-05f, 9.991e-05f,
                    0.00016f}});
  OptimizerConfig ftrl = Make(OptimizerKind::kFtrl);
  ftrl.ftrl_beta = 1.0f;
  ftrl.ftrl_l1 = 0.01f;
  ftrl.ftrl_l2 = 0.1f;
  cases.push_back({"ftrl",
                   ftrl,
                   {0.018922514f, -0.039436728f, 0.21288369f, -0.027659574f},
                   {-0.24342942f, 0.51985486f, -2.8333227f, 0.4f, 0.05f, 0.08f, 0.1f, 0.16f}});
  OptimizerConfig ftrl_l1 = ftrl;
  ftrl_l1.ftrl_l1 = 1.0f;  // |z| <= l1 everywhere but coordinate 2: weights snap to 0
  cases.push_back({"ftrl_sparse",
                   ftrl_l1,
                   {0.0f, 0.0f, 0.13731118f, 0.0f},
                   {-0.2f, 0.5f, -2.8210589f, 0.4f, 0.05f, 0.08f, 0.1f, 0.16f}});
  return cases;
}

class OptimizerTest : public testing::TestWithParam<OptimizerCase> {};

TEST_P(OptimizerTest, MatchesHandComputedReference) {
  const OptimizerCase& c = GetParam();
  std::vector<float> w(kW0, kW0 + kDim);
  std::vector<float> state(OptimizerStateFloats(c.config.kind, kDim));
  ASSERT_EQ(state.size(), c.want_state.size());
  InitOptimizerState(c.config, kDim, state.data());
  float scratch[kDim];
  for (uint32_t t = 1; t <= 2; ++t) {
    ApplyOptimizer(c.config, kDim, kLr, t, kG[t - 1], scratch, w.data(), state.data());
  }
  for (int i = 0; i < kDim; ++i) EXPECT_NEAR(w[i], c.want_w[i], 2e-6) << "w[" << i << "]";
  for (size_t i = 0; i < state.size(); ++i) {
    EXPECT_NEAR(state[i], c.want_state[i], 2e-6 * std::max(1.0f, std::fabs(c.want_state[i])))
        << "state[" << i << "]";
  }
}

INSTANTIATE_TEST_SUITE_P(AllOptimizers, OptimizerTest, testing::ValuesIn(Cases()),
                         [](const testing::TestParamInfo<OptimizerCase>& info) {
                           return info.param.name;
                         });

TEST(OptimizerStateTest, SizesPerKind) {
  EXPECT_EQ(OptimizerStateFloats(OptimizerKind::kSgd, 64), 0);
  EXPECT_EQ(OptimizerStateFloats(OptimizerKind::kAdagrad, 64), 64);
  EXPECT_EQ(OptimizerStateFloats(OptimizerKind::kRowwiseAdagrad, 64), 1);
  EXPECT_EQ(OptimizerStateFloats(OptimizerKind::kAdam, 64), 128);
  EXPECT_EQ(OptimizerStateFloats(OptimizerKind::kFtrl, 64), 128);
}

// An accumulator that overflowed to Inf froze its row (every later step divided by
// it); the accumulators saturate instead, so a row keeps training.
TEST(OptimizerStateTest, AccumulatorsSaturateAndTheRowKeepsTraining) {
  for (OptimizerKind kind :
       {OptimizerKind::kAdagrad, OptimizerKind::kRowwiseAdagrad, OptimizerKind::kFtrl}) {
    SCOPED_TRACE(OptimizerName(kind));
    const OptimizerConfig config = Make(kind);
    std::vector<float> state(OptimizerStateFloats(kind, kDim));
    InitOptimizerState(config, kDim, state.data());
    float w[kDim] = {0.5f, 0.5f, 0.5f, 0.5f};
    float scratch[kDim];
    const float huge[kDim] = {1e20f, 1e20f, 1e20f, 1e20f};  // squares overflow fp32
    ApplyOptimizer(config, kDim, kLr, 1, huge, scratch, w, state.data());
    for (float v : state) EXPECT_TRUE(std::isfinite(v));
    const float before = w[0];
    const float g[kDim] = {1e15f, 1e15f, 1e15f, 1e15f};
    ApplyOptimizer(config, kDim, kLr, 2, g, scratch, w, state.data());
    EXPECT_TRUE(std::isfinite(w[0]));
    EXPECT_NE(w[0], before);
  }
}

// Through the table: lazy Adam's bias correction uses each row's own update count, so
// a row first pushed at global step 100 gets the same update as a fresh row at step 1.
TEST(TableOptimizerTest, LazyAdamUsesPerRowStep) {
  TableConfig config;
  config.dim = kDim;
  config.initializer.kind = InitKind::kZeros;
  config.optimizer = Make(OptimizerKind::kAdam);
  config.num_stripes = 2;
  auto table = EmbeddingTable::Create(config, nullptr).value();
  const uint64_t a = 11, b = 22;
  table->Push({&a, 1}, kG[0], kLr, 1);
  table->Push({&a, 1}, kG[1], kLr, 2);
  for (int64_t step = 3; step < 100; ++step) table->Push({&a, 1}, kG[0], kLr, step);
  table->Push({&b, 1}, kG[0], kLr, 100);  // b's first update
  float got[kDim];
  table->Lookup({&b, 1}, got);
  float want[kDim] = {0, 0, 0, 0};
  std::vector<float> state(2 * kDim, 0.0f);
  float scratch[kDim];
  ApplyOptimizer(config.optimizer, kDim, kLr, 1, kG[0], scratch, want, state.data());
  for (int i = 0; i < kDim; ++i) EXPECT_FLOAT_EQ(got[i], want[i]);
  EXPECT_EQ(table->GetRowInfo(a)->update_count, 99u);
  EXPECT_EQ(table->GetRowInfo(b)->update_count, 1u);
}

}  // namespace
}  // namespace towerps::sparse_emb
