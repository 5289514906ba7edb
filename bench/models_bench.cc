// bench/run.sh models: the dense compute of a two-tower training step.
//   two_tower_step: examples/s of forward + backward of both towers and the
//     in-batch softmax (batch 1024, input 256, MLP [512, 256], 4 cross layers,
//     output 128), with 1 and 2 OpenBLAS threads; beside it the achieved
//     GFLOP/s (analytic model FLOPs x examples/s) against OpenBLAS sgemm
//     GFLOP/s on exactly the GEMM shapes of the step, measured in the same run.
//     ratio = model FLOP utilisation (MFU).
//   adam_step_traffic: the dense optimizer over all dense parameters as bytes
//     moved per second beside memcpy of the parameters (the memory bound).
//   embedding_bag: mean pooling of 50-row histories beside a plain row gather.
//   sequence_step_attention_L*: examples/s of a training step whose user tower
//     encodes the history with pooling=attention (heads 2, 1 block, ffn 64)
//     beside the same step with pooling=mean (EmbeddingBag forward + backward),
//     same shapes otherwise: examples/movietweetings.conf's model (history dim 32,
//     item 32+16+16, mlp 128, cross 2, out 64), batch 256, 64 extra negatives,
//     full histories of L = 20 and 50 items, 1 OpenBLAS thread.
#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/bench_util.h"
#include "models/embedding_bag.h"
#include "models/optimizer.h"
#include "models/random.h"
#include "models/two_tower.h"

namespace towerps::bench {
namespace {

using models::Mat;
using models::SplitMix64;
using models::View;

Mat<float> RandomMatrix(int rows, int cols, uint64_t seed) {
  SplitMix64 rng(seed);
  Mat<float> m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) {
    m.data()[i] = static_cast<float>(2 * rng.NextDouble() - 1);
  }
  return m;
}

// One row-major sgemm C (m x n) += op(A) (m x k) * op(B) (k x n).
struct Gemm {
  int m, n, k;
  bool trans_a, trans_b;
};

// The three products of a Linear (or cross layer's) forward and backward over
// `rows` examples: y = x W, dW = x^T dy, dx = dy W^T.
void AddLinear(int rows, int in, int out, std::vector<Gemm>* gemms) {
  gemms->push_back({rows, out, in, false, false});
  gemms->push_back({in, out, rows, true, false});
  gemms->push_back({rows, in, out, false, true});
}

void AddTower(const models::TowerConfig& c, int rows, std::vector<Gemm>* gemms) {
  const int d = c.input_dim();
  int prev = d;
  for (int h : c.mlp_hidden) {
    AddLinear(rows, prev, h, gemms);
    prev = h;
  }
  if (!c.mlp_hidden.empty() && prev != d) AddLinear(rows, prev, d, gemms);
  for (int l = 0; l < c.cross_layers; ++l) AddLinear(rows, d, d, gemms);
  AddLinear(rows, d, c.output_dim, gemms);
}

// Runs the step's GEMMs back to back through cblas_sgemm (row-major, C += AB).
class SgemmPeer {
 public:
  explicit SgemmPeer(std::vector<Gemm> gemms) : gemms_(std::move(gemms)) {
    size_t max_a = 0, max_b = 0, max_c = 0;
    for (const Gemm& g : gemms_) {
      max_a = std::max(max_a, static_cast<size_t>(g.m) * g.k);
      max_b = std::max(max_b, static_cast<size_t>(g.k) * g.n);
      max_c = std::max(max_c, static_cast<size_t>(g.m) * g.n);
      flops_ += 2.0 * g.m * g.n * g.k;
    }
    a_.assign(max_a, 0.5f);
    b_.assign(max_b, 0.25f);
    c_.assign(max_c, 0.0f);
  }

  void Run() {
    for (const Gemm& g : gemms_) {
      cblas_sgemm(CblasRowMajor, g.trans_a ? CblasTrans : CblasNoTrans,
                  g.trans_b ? CblasTrans : CblasNoTrans, g.m, g.n, g.k, 1.0f, a_.data(),
                  g.trans_a ? g.m : g.k, b_.data(), g.trans_b ? g.k : g.n, 1.0f, c_.data(), g.n);
    }
    DoNotOptimize(c_[0]);
  }
  double flops() const { return flops_; }

 private:
  std::vector<Gemm> gemms_;
  std::vector<float> a_, b_, c_;
  double flops_ = 0;
};

void TwoTowerFigures(bool quick) {
  const int batch = quick ? 256 : 1024;
  const int repeats = quick ? 5 : 21;
  models::TwoTowerConfig config;
  config.user.input_dims = {256};
  config.user.mlp_hidden = {512, 256};
  config.user.cross_layers = 4;
  config.user.output_dim = 128;
  config.item = config.user;
  auto model = std::move(models::TwoTower::Create(config)).value();
  model->Init(1);

  Mat<float> users = RandomMatrix(batch, 256, 2), items = RandomMatrix(batch, 256, 3);
  SplitMix64 rng(4);
  std::vector<uint64_t> ids(batch);
  std::vector<float> log_q(batch);
  for (int i = 0; i < batch; ++i) {
    ids[i] = rng.NextBelow(100000);
    log_q[i] = -5.0f - static_cast<float>(rng.NextDouble());
  }
  models::PairInfo info;
  info.item_ids = ids;
  info.item_log_q = log_q;

  std::vector<Gemm> gemms;
  AddTower(config.user, batch, &gemms);
  AddTower(config.item, batch, &gemms);
  gemms.push_back({batch, batch, 128, false, true});   // logits U V^T
  gemms.push_back({batch, 128, batch, false, false});  // dU = dZ V
  gemms.push_back({batch, 128, batch, true, false});   // dV = dZ^T U
  const double flops_per_example = models::TwoTowerFlopsPerExample(config, batch, 0);
  SgemmPeer peer(std::move(gemms));

  for (int threads : {1, 2}) {
    openblas_set_num_threads(threads);
    auto step = [&] {
      auto loss = model->ForwardBackward(View(users), View(items), 0, info);
      DoNotOptimize(*loss);
    };
    step();
    step();
    peer.Run();
    const std::vector<double> medians =
        InterleavedMedianSeconds(repeats, {step, [&] { peer.Run(); }});
    const double seconds = medians[0], peer_seconds = medians[1];
    const double examples_per_s = batch / seconds;
    const double sgemm = peer.flops() / peer_seconds / 1e9;
    const std::string t = absl::StrCat(threads, "thread", threads > 1 ? "s" : "");
    PrintFigure({"models", "two_tower_step_" + t, examples_per_s, "examples/s",
                 "sgemm_bound_examples_per_s", sgemm * 1e9 / flops_per_example});
    PrintFigure({"models", "two_tower_step_gflops_" + t, flops_per_example * examples_per_s / 1e9,
                 "GFLOP/s", "openblas_sgemm_same_shapes", sgemm});
  }
  openblas_set_num_threads(2);

  // The dense optimizer over every dense parameter (memory-bound).
  auto adam = std::move(models::DenseOptimizer::Create({}, model->params().size())).value();
  auto values = model->params().values();
  auto grads = model->params().grads();
  const double adam_s = MedianSeconds(repeats, [&] {
    if (!adam->Step(values, grads, 1e-6f).ok()) std::abort();
  });
  std::vector<float> copy(values.size());
  const double copy_s = MedianSeconds(repeats, [&] {
    std::memcpy(copy.data(), values.data(), values.size() * sizeof(float));
  });
  DoNotOptimize(copy[0]);
  // Adam reads p, g, m, v and writes p, m, v: 28 bytes per parameter;
  // memcpy of the parameters moves 8 bytes per parameter.
  const double params = static_cast<double>(values.size());
  PrintFigure({"models", "adam_step_traffic", 28.0 * params / adam_s / 1e9, "GB/s", "memcpy",
               8.0 * params / copy_s / 1e9});
}

void EmbeddingBagFigures(bool quick) {
  const int batch = quick ? 256 : 1024, history = 50, dim = 64;
  const int unique_rows = batch * history / 2;
  const int repeats = quick ? 3 : 15;
  Mat<float> rows = RandomMatrix(unique_rows, dim, 5);
  SplitMix64 rng(6);
  std::vector<int64_t> offsets(batch + 1);
  std::vector<int32_t> indices(static_cast<size_t>(batch) * history);
  for (int i = 0; i <= batch; ++i) offsets[i] = static_cast<int64_t>(i) * history;
  for (int32_t& idx : indices) idx = static_cast<int32_t>(rng.NextBelow(unique_rows));
  models::EmbeddingBag<float> bag;
  const double bag_s = MedianSeconds(repeats, [&] {
    if (!bag.Forward(View(rows), {offsets, indices, {}}).ok()) std::abort();
    DoNotOptimize(bag.output()(0, 0));
  });
  Mat<float> gathered(indices.size(), dim);
  const double gather_s = MedianSeconds(repeats, [&] {
    for (size_t k = 0; k < indices.size(); ++k) gathered.row(k) = rows.row(indices[k]);
    DoNotOptimize(gathered(0, 0));
  });
  const double mrows = indices.size() / 1e6;
  PrintFigure({"models", "embedding_bag_mean_forward", mrows / bag_s, "M rows/s", "row_gather",
               mrows / gather_s});
}

// One training step of the examples' model (docs/models.md "Sequential user
// tower") with the history pooled by mean or encoded by attention; the rows and
// gradients are those a worker pulls and pushes.
class SequenceStep {
 public:
  SequenceStep(bool attention, int batch, int max_len, int extra)
      : attention_(attention), extra_(extra) {
    models::TwoTowerConfig config;
    config.user.input_dims = {kDim};
    config.item.input_dims = {kDim, 16, 16};
    for (models::TowerConfig* t : {&config.user, &config.item}) {
      t->mlp_hidden = {128};
      t->cross_layers = 2;
      t->output_dim = 64;
    }
    config.loss.temperature = 0.2;
    if (attention) {
      models::UserSequenceConfig seq;
      seq.encoder.dim = kDim;
      seq.encoder.max_len = max_len;
      config.user_sequences.push_back(seq);
    }
    model_ = std::move(models::TwoTower::Create(config)).value();
    model_->Init(7);
    rows_ = RandomMatrix(batch * max_len, kDim, 8);
    user_x0_ = Mat<float>::Zero(batch, kDim);
    item_x0_ = RandomMatrix(batch + extra, 64, 9);
    lengths_.assign(batch, max_len);
    offsets_.resize(batch + 1);
    for (int b = 0; b <= batch; ++b) offsets_[b] = static_cast<int64_t>(b) * max_len;
    indices_.resize(static_cast<size_t>(batch) * max_len);
    for (size_t k = 0; k < indices_.size(); ++k) indices_[k] = static_cast<int32_t>(k);
    SplitMix64 rng(10);
    ids_.resize(batch + extra);
    log_q_.resize(batch + extra);
    for (size_t i = 0; i < ids_.size(); ++i) {
      ids_[i] = rng.NextBelow(10000);
      log_q_[i] = -5.0f - static_cast<float>(rng.NextDouble());
    }
    info_.item_ids = std::span<const uint64_t>(ids_).first(batch);
    info_.extra_item_ids = std::span<const uint64_t>(ids_).subspan(batch);
    info_.item_log_q = std::span<const float>(log_q_).first(batch);
    info_.extra_log_q = std::span<const float>(log_q_).subspan(batch);
  }

  void Run() {
    if (attention_) {
      const models::SequenceBatch seq{{rows_.data(), static_cast<size_t>(rows_.size())},
                                      lengths_};
      auto loss = model_->ForwardBackward(View(user_x0_), View(item_x0_), extra_,
                                          info_, {&seq, 1});
      DoNotOptimize(*loss);
      DoNotOptimize(model_->sequence_input_grad(0)(0, 0));
      return;
    }
    if (!bag_.Forward(View(rows_), {offsets_, indices_, {}}).ok()) std::abort();
    user_x0_ = bag_.output();
    auto loss = model_->ForwardBackward(View(user_x0_), View(item_x0_), extra_, info_);
    DoNotOptimize(*loss);
    DoNotOptimize(bag_.Backward(View(model_->user_input_grad()))(0, 0));
  }

 private:
  static constexpr int kDim = 32;
  bool attention_;
  int extra_;
  std::unique_ptr<models::TwoTower> model_;
  Mat<float> rows_, user_x0_, item_x0_;
  std::vector<int32_t> lengths_;
  std::vector<int64_t> offsets_;
  std::vector<int32_t> indices_;
  std::vector<uint64_t> ids_;
  std::vector<float> log_q_;
  models::PairInfo info_;
  models::EmbeddingBag<float> bag_;
};

void SequenceFigures(bool quick) {
  const int batch = 256, extra = 64;
  const int repeats = quick ? 5 : 31;
  openblas_set_num_threads(1);
  for (int len : {20, 50}) {
    SequenceStep attention(true, batch, len, extra), mean(false, batch, len, extra);
    for (int i = 0; i < 2; ++i) {
      attention.Run();
      mean.Run();
    }
    const std::vector<double> medians = InterleavedMedianSeconds(
        repeats, {[&] { attention.Run(); }, [&] { mean.Run(); }});
    PrintFigure({"models", absl::StrCat("sequence_step_attention_L", len), batch / medians[0],
                 "examples/s", "mean_pooling_same_shapes", batch / medians[1]});
  }
  openblas_set_num_threads(2);
}

}  // namespace
}  // namespace towerps::bench

int main(int argc, char** argv) {
  const bool quick = towerps::bench::QuickMode(argc, argv);
  towerps::bench::TwoTowerFigures(quick);
  towerps::bench::EmbeddingBagFigures(quick);
  towerps::bench::SequenceFigures(quick);
  return 0;
}
