// End-to-end tests of the dense core: a gradient check through both towers
// and the loss, a planted toy problem the two towers must learn, and the
// steady state's freedom from heap allocation.
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <new>
#include <vector>

#include "gtest/gtest.h"
#include "models/grad_check.h"
#include "models/lr_schedule.h"
#include "models/optimizer.h"
#include "models/random.h"
#include "models/two_tower.h"

// Counts operator new calls so a test can assert a window allocates nothing.
// GCC cannot see that this replacement pairs malloc with free consistently.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
namespace {
std::atomic<int64_t> g_new_calls{0};
}  // namespace

void* operator new(size_t size) {
  g_new_calls.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace towerps::models {
namespace {

using testing::ExpectGradientMatches;
using testing::RandomMat;
using testing::Span;

TEST(TwoTowerGradTest, TowersPlusSoftmaxWithLogQAndMixedNegatives) {
  // The full dense step in double: user tower, item tower over positives and
  // extra negatives in one pass, in-batch softmax with logQ and masking.
  TowerConfig tc;
  tc.input_dims = {3, 2};
  tc.mlp_hidden = {6};
  tc.cross_layers = 2;
  tc.output_dim = 4;
  tc.activation = ActivationKind::kSilu;
  tc.cross_init_scale = 1.0;
  ParamStore<double> store;
  auto user = std::move(Tower<double>::Create(tc, "user", &store)).value();
  auto item = std::move(Tower<double>::Create(tc, "item", &store)).value();
  user->Init(1);
  item->Init(2);
  LossOptions lo;
  lo.temperature = 0.3;
  auto loss = std::move(RetrievalLoss<double>::Create(lo)).value();
  const int b = 4, n = 2;
  Mat<double> ux = RandomMat(b, 5, 3), ix = RandomMat(b + n, 5, 4);
  std::vector<uint64_t> ids = {1, 2, 1, 3}, extra_ids = {2, 9};
  std::vector<double> log_q = {-1, -2, -1, -3}, extra_log_q = {-4, -4};
  auto objective = [&] {
    const Mat<double>& u = user->Forward(View(ux));
    const Mat<double>& it = item->Forward(View(ix));
    LossBatch<double> batch(View(u), ConstMatRef<double>(it.data(), b, 4),
                            ConstMatRef<double>(it.data() + b * 4, n, 4));
    batch.item_ids = ids;
    batch.extra_item_ids = extra_ids;
    batch.item_log_q = log_q;
    batch.extra_log_q = extra_log_q;
    return loss->Compute(batch).value();
  };
  store.ZeroGrads();
  objective();
  user->Backward(loss->d_user());
  item->Backward(loss->d_items_all());
  Mat<double> dux = user->input_grad(), dix = item->input_grad();
  std::vector<double> grads(store.grads().begin(), store.grads().end());
  ExpectGradientMatches("user input", Span(ux), Span(dux), objective);
  ExpectGradientMatches("item input", Span(ix), Span(dix), objective);
  ExpectGradientMatches("params", store.values(), grads, objective);
}

// Planted problem: item v has a random feature vector f_v; a user who engages
// with v shows features A f_v + noise for a fixed random A. The towers must
// learn to map the user side onto the right item among all items.
class PlantedProblem {
 public:
  static constexpr int kItems = 64, kDim = 16;
  PlantedProblem() : items_(RandomMat(kItems, kDim, 100).cast<float>()),
                     a_(RandomMat(kDim, kDim, 101).cast<float>()) {}

  // Fills a batch of b examples (user features, item features, item ids).
  void Batch(int b, SplitMix64* rng, Mat<float>* users, Mat<float>* items,
             std::vector<uint64_t>* ids) const {
    users->resize(b, kDim);
    items->resize(b, kDim);
    ids->resize(b);
    for (int i = 0; i < b; ++i) {
      const int v = static_cast<int>(rng->NextBelow(kItems));
      (*ids)[i] = v;
      items->row(i) = items_.row(v);
      users->row(i) = items_.row(v) * a_.transpose();
      for (int k = 0; k < kDim; ++k) (*users)(i, k) += 0.1f * (2 * rng->NextDouble() - 1);
    }
  }
  const Mat<float>& all_items() const { return items_; }

 private:
  Mat<float> items_, a_;
};

TwoTowerConfig SmallTwoTower(int dim) {
  TwoTowerConfig c;
  c.user.input_dims = {dim};
  c.user.mlp_hidden = {32};
  c.user.cross_layers = 2;
  c.user.output_dim = 16;
  c.item = c.user;
  c.loss.temperature = 0.1;
  return c;
}

TEST(TwoTowerTrainTest, LearnsPlantedProblem) {
  PlantedProblem problem;
  auto model = std::move(TwoTower::Create(SmallTwoTower(PlantedProblem::kDim))).value();
  model->Init(7);
  DenseOptimizerOptions oo;
  oo.clip_global_norm = 10.0f;
  auto opt = std::move(DenseOptimizer::Create(oo, model->params().size())).value();
  LrScheduleOptions lo;
  lo.base_lr = 0.01;
  lo.warmup_steps = 20;
  lo.decay_steps = 380;
  lo.min_lr = 0.001;
  LrSchedule schedule = *LrSchedule::Create(lo);

  SplitMix64 rng(5);
  Mat<float> users, items;
  std::vector<uint64_t> ids;
  const int kSteps = 400, kBatch = 32;
  double first = 0, last = 0;
  for (int step = 0; step < kSteps; ++step) {
    problem.Batch(kBatch, &rng, &users, &items, &ids);
    PairInfo info;
    info.item_ids = ids;
    auto loss = model->ForwardBackward(View(users), View(items), 0, info);
    ASSERT_TRUE(loss.ok()) << loss.status();
    if (step < 10) first += *loss / 10;
    if (step >= kSteps - 10) last += *loss / 10;
    ASSERT_TRUE(opt->Step(model->params().values(), model->params().grads(),
                          static_cast<float>(schedule.LrAt(step)))
                    .ok());
  }
  EXPECT_GT(first, 2.5);  // about log(32) at the start
  EXPECT_LT(last, 0.25 * first) << "first " << first << " last " << last;

  // Retrieval over all items: the true item ranks first for most users.
  problem.Batch(256, &rng, &users, &items, &ids);
  Mat<float> u = *model->EmbedUsers(View(users)).value();
  Mat<float> all = model->EmbedItems(View(problem.all_items()));
  Mat<float> scores = u * all.transpose();
  int hits = 0;
  for (int i = 0; i < 256; ++i) {
    Eigen::Index best;
    scores.row(i).maxCoeff(&best);
    hits += static_cast<uint64_t>(best) == ids[i];
  }
  EXPECT_GT(hits, 0.8 * 256) << hits;
}

TEST(TwoTowerTrainTest, SteadyStateAllocatesNothing) {
  TwoTowerConfig c = SmallTwoTower(24);
  c.user.mlp_hidden = {64, 48};
  c.user.cross_layers = 4;
  c.item = c.user;
  auto model = std::move(TwoTower::Create(c)).value();
  model->Init(1);
  auto opt = std::move(DenseOptimizer::Create({}, model->params().size())).value();
  const int b = 64, n = 16;
  Mat<float> ux = RandomMat(b, 24, 1).cast<float>(), ix = RandomMat(b + n, 24, 2).cast<float>();
  std::vector<uint64_t> ids(b), extra_ids(n);
  for (int i = 0; i < b; ++i) ids[i] = i % 40;  // duplicates
  for (int k = 0; k < n; ++k) extra_ids[k] = 30 + k;
  std::vector<float> log_q(b, -3.0f), extra_log_q(n, -5.0f), weights(b, 1.0f);
  PairInfo info{ids, extra_ids, log_q, extra_log_q, weights, {}, {}};
  auto step = [&] {
    ASSERT_TRUE(model->ForwardBackward(View(ux), View(ix), n, info).ok());
    ASSERT_TRUE(opt->Step(model->params().values(), model->params().grads(), 1e-3f).ok());
  };
  step();
  step();
#ifdef EIGEN_RUNTIME_NO_MALLOC
  Eigen::internal::set_is_malloc_allowed(false);  // asserts in Debug builds
#endif
  const int64_t before = g_new_calls.load();
  for (int i = 0; i < 3; ++i) step();
  const int64_t after = g_new_calls.load();
#ifdef EIGEN_RUNTIME_NO_MALLOC
  Eigen::internal::set_is_malloc_allowed(true);
#endif
  EXPECT_EQ(after - before, 0);
}

TEST(TwoTowerTrainTest, SequenceEncoderSteadyStateAllocatesNothing) {
  TwoTowerConfig c = SmallTwoTower(24);
  c.user.input_dims = {16, 8};
  UserSequenceConfig seq;
  seq.block = 0;
  seq.encoder.dim = 16;
  seq.encoder.max_len = 6;
  seq.encoder.blocks = 2;
  seq.encoder.ffn_dim = 20;
  c.user_sequences = {seq};
  auto model = std::move(TwoTower::Create(c)).value();
  model->Init(1);
  EXPECT_EQ(model->params().size(), DenseParamCount(c));
  const int b = 32;
  Mat<float> ux = RandomMat(b, 24, 1).cast<float>(), ix = RandomMat(b, 24, 2).cast<float>();
  Mat<float> rows = RandomMat(b * 6, 16, 3).cast<float>();
  std::vector<int32_t> lengths(b);
  for (int i = 0; i < b; ++i) lengths[i] = i % 7;  // 0 (no history) to 6 (full)
  std::vector<uint64_t> ids(b);
  for (int i = 0; i < b; ++i) ids[i] = i;
  PairInfo info{ids, {}, {}, {}, {}, {}, {}};
  SequenceBatch batch{{rows.data(), static_cast<size_t>(rows.size())}, lengths};
  std::span<const SequenceBatch> seqs(&batch, 1);
  auto step = [&] { ASSERT_TRUE(model->ForwardBackward(View(ux), View(ix), 0, info, seqs).ok()); };
  step();
  step();
  EXPECT_EQ(model->sequence_input_grad(0).rows(), b * 6);
  EXPECT_FALSE(model->ForwardBackward(View(ux), View(ix), 0, info).ok());  // sequence missing
  const int64_t before = g_new_calls.load();
  for (int i = 0; i < 3; ++i) step();
  EXPECT_EQ(g_new_calls.load() - before, 0);
}

TEST(TwoTowerTest, ValidatesConfigAndInputs) {
  TwoTowerConfig c = SmallTwoTower(8);
  c.item.output_dim = 8;
  EXPECT_FALSE(TwoTower::Create(c).ok());
  auto model = std::move(TwoTower::Create(SmallTwoTower(8))).value();
  Mat<float> ux = Mat<float>::Zero(4, 8), ix = Mat<float>::Zero(5, 8);
  EXPECT_FALSE(model->ForwardBackward(View(ux), View(ix), 0, {}).ok());
  EXPECT_TRUE(model->ForwardBackward(View(ux), View(ix), 1, {}).ok());
  std::vector<float> bad_weights(3, 1.0f);
  PairInfo info;
  info.weights = bad_weights;
  EXPECT_FALSE(model->ForwardBackward(View(ux), View(ix), 1, info).ok());
}

}  // namespace
}  // namespace towerps::models
