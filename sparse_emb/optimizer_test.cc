// Every sparse optimizer against a hand-computed reference: two updates of a 4-dim row
// from w0 with gradients g1, g2 at lr 0.1; expected values worked out step by step in
// double precision from the formulas in optimizer.h (e.g. SGD: w = w0 - 0.1 (g1 + g2)).
#include "sparse_emb/optimizer.h"

#include <cmath>
#include <cstring>
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

OptimizerConfig CatchUpAdam() {
  OptimizerConfig c = Make(OptimizerKind::kAdam);
  c.adam_mode = AdamMode::kCatchUp;
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
    ApplyOptimizer(c.config, kDim, kLr, t, t - 1, kG[t - 1], scratch, w.data(), state.data());
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
  EXPECT_EQ(OptimizerStateFloats(Make(OptimizerKind::kAdam), 64), 128);  // lazy
  EXPECT_EQ(OptimizerStateFloats(CatchUpAdam(), 64), 129);               // + t_last
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
    ApplyOptimizer(config, kDim, kLr, 1, 0, huge, scratch, w, state.data());
    for (float v : state) EXPECT_TRUE(std::isfinite(v));
    const float before = w[0];
    const float g[kDim] = {1e15f, 1e15f, 1e15f, 1e15f};
    ApplyOptimizer(config, kDim, kLr, 2, 1, g, scratch, w, state.data());
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
  config.optimizer = Make(OptimizerKind::kAdam);  // lazy: the default
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
  ApplyOptimizer(config.optimizer, kDim, kLr, 1, 0, kG[0], scratch, want, state.data());
  for (int i = 0; i < kDim; ++i) EXPECT_FLOAT_EQ(got[i], want[i]);
  EXPECT_EQ(table->GetRowInfo(a)->update_count, 99u);
  EXPECT_EQ(table->GetRowInfo(b)->update_count, 1u);
}

// Catch-up Adam, g1 at global step 0 and g2 at step 4: steps t = 2, 3, 4 had no
// gradient. Hand-computed dense Adam (b1 0.9, b2 0.999, lr 0.1) over t = 1..5 with
// g = 0 at t = 2..4: the row ends where dense Adam on the whole table puts it.
TEST(CatchUpAdamTest, ReplaysSkippedStepsLikeDenseAdam) {
  const OptimizerConfig config = CatchUpAdam();
  std::vector<float> w(kW0, kW0 + kDim);
  std::vector<float> state(OptimizerStateFloats(config, kDim));
  InitOptimizerState(config, kDim, state.data());
  float scratch[kDim];
  ApplyOptimizer(config, kDim, kLr, 1, 0, kG[0], scratch, w.data(), state.data());
  ApplyOptimizer(config, kDim, kLr, 2, 4, kG[1], scratch, w.data(), state.data());
  const float want_w[kDim] = {0.17394913f, -0.0020487576f, 0.72203744f, -0.054548922f};
  const float want_m[kDim] = {0.026561f, 0.006878f, 0.009683f, 0.04f};
  const float want_v[kDim] = {4.996006e-05f, 7.984024e-05f, 9.964054e-05f, 0.00016f};
  for (int i = 0; i < kDim; ++i) {
    EXPECT_NEAR(w[i], want_w[i], 2e-6) << "w[" << i << "]";
    EXPECT_NEAR(state[i], want_m[i], 2e-7) << "m[" << i << "]";
    EXPECT_NEAR(state[kDim + i], want_v[i], 2e-5 * want_v[i]) << "v[" << i << "]";
  }
  // A push from a slower worker (step 2 < t_last 5) replays nothing and keeps t_last.
  std::vector<float> w2 = w, state2 = state;
  ApplyOptimizer(config, kDim, kLr, 3, 2, kG[0], scratch, w2.data(), state2.data());
  EXPECT_EQ(std::memcmp(&state2[2 * kDim], &state[2 * kDim], sizeof(float)), 0);
}

// A row first updated at global step 99 is bias-corrected with t = 100 (dense Adam's
// view of a row whose gradient was zero until then): lr (1-b1) g / bc1 / sqrt((1-b2)
// g^2 / bc2) = 0.0975770 per nonzero coordinate, against lazy Adam's lr = 0.1.
TEST(CatchUpAdamTest, RowCreatedLateUsesTheGlobalStep) {
  TableConfig config;
  config.dim = kDim;
  config.initializer.kind = InitKind::kZeros;
  config.optimizer = CatchUpAdam();
  config.num_stripes = 2;
  auto table = EmbeddingTable::Create(config, nullptr).value();
  const uint64_t key = 5;
  table->Push({&key, 1}, kG[0], kLr, 99);
  float got[kDim];
  table->Lookup({&key, 1}, got);
  const float want[kDim] = {-0.097577008f, 0.097577056f, -0.097577072f, 0.0f};
  for (int i = 0; i < kDim; ++i) EXPECT_NEAR(got[i], want[i], 1e-6) << i;
}

// The per-row state (m, v, t_last) survives a snapshot: a restored table continues
// exactly as the original, including the replay of the steps skipped across the save.
TEST(CatchUpAdamTest, CheckpointRoundTripKeepsPerRowState) {
  TableConfig config;
  config.dim = kDim;
  config.initializer.kind = InitKind::kUniform;
  config.initializer.scale = 0.05f;
  config.optimizer = CatchUpAdam();
  config.num_stripes = 2;
  auto table = EmbeddingTable::Create(config, nullptr).value();
  const uint64_t keys[2] = {3, 4};
  float grads[2 * kDim];
  for (int i = 0; i < kDim; ++i) grads[i] = grads[kDim + i] = kG[0][i];
  table->Push(keys, grads, kLr, 10);
  table->Push({&keys[0], 1}, kG[1], kLr, 11);
  const std::string path = testing::TempDir() + "/catchup_adam.snap";
  ASSERT_TRUE(table->Save(path).ok());
  auto restored = EmbeddingTable::Create(config, nullptr).value();
  ASSERT_TRUE(restored->Load(path).ok());
  for (EmbeddingTable* t : {table.get(), restored.get()}) t->Push(keys, grads, kLr, 40);
  float a[2 * kDim], b[2 * kDim];
  table->Lookup(keys, a);
  restored->Lookup(keys, b);
  for (int i = 0; i < 2 * kDim; ++i) EXPECT_EQ(a[i], b[i]) << i;
  std::vector<float> sa(table->state_floats()), sb(table->state_floats());
  for (uint64_t k : keys) {
    ASSERT_TRUE(table->ReadOptimizerState(k, sa.data()));
    ASSERT_TRUE(restored->ReadOptimizerState(k, sb.data()));
    EXPECT_EQ(std::memcmp(sa.data(), sb.data(), sa.size() * sizeof(float)), 0) << k;
  }
  // A lazy-Adam table (another row layout) refuses the snapshot.
  config.optimizer.adam_mode = AdamMode::kLazy;
  auto lazy = EmbeddingTable::Create(config, nullptr).value();
  EXPECT_FALSE(lazy->Load(path).ok());
}

}  // namespace
}  // namespace towerps::sparse_emb
