#include "models/loss.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "gtest/gtest.h"
#include "models/grad_check.h"

namespace towerps::models {
namespace {

using testing::ExpectGradientMatches;
using testing::RandomMat;
using testing::Span;

// A batch with every feature on: duplicates (ids 7 at rows 0 and 3), an extra
// negative equal to row 1's positive (id 8), logQ, weights, labels.
struct Fixture {
  int b = 5, n = 3, d = 4;
  Mat<double> u = RandomMat(5, 4, 1), v = RandomMat(5, 4, 2), x = RandomMat(3, 4, 3);
  std::vector<uint64_t> ids = {7, 8, 9, 7, 10};
  std::vector<uint64_t> extra_ids = {11, 8, 12};
  std::vector<double> log_q = {-1.0, -2.5, -0.3, -1.0, -4.0};
  std::vector<double> extra_log_q = {-3.0, -3.0, -3.0};
  std::vector<double> weights = {1.0, 2.0, 0.5, 1.0, 0.0};
  std::vector<double> labels = {1.0, 1.0, 0.7, 0.0, 1.0};
  std::vector<int32_t> extra_owner;  // empty: every extra is shared


  // All side information set, on the given matrices.
  LossBatch<double> Batch(const Mat<double>& uu, const Mat<double>& vv,
                          const Mat<double>& xx) const {
    LossBatch<double> batch(View(uu), View(vv), View(xx));
    batch.item_ids = ids;
    batch.extra_item_ids = extra_ids;
    batch.item_log_q = log_q;
    batch.extra_log_q = extra_log_q;
    batch.weights = weights;
    batch.labels = labels;
    batch.extra_owner = extra_owner;
    return batch;
  }
  LossBatch<double> Batch() const { return Batch(u, v, x); }
};

double Softplus(double z) { return std::log1p(std::exp(z)); }

// Straightforward per-pair implementation of both losses (loss.h's formulas).
// hard_k > 0: the hard_k largest negatives get weight hard_w in the softmax sum; with
// hard_only the others are dropped (loss.h's hard negatives).
double ReferenceLoss(const Fixture& f, LossKind kind, double temperature, double neg_weight,
                     int hard_k = 0, double hard_w = 1.0, bool hard_only = false) {
  double total = 0;
  for (int i = 0; i < f.b; ++i) {
    std::vector<double> neg;
    double pos = 0;
    for (int j = 0; j < f.b + f.n; ++j) {
      const bool extra = j >= f.b;
      const auto& item = extra ? f.x.row(j - f.b) : f.v.row(j);
      const uint64_t id = extra ? f.extra_ids[j - f.b] : f.ids[j];
      const double lq = extra ? f.extra_log_q[j - f.b] : f.log_q[j];
      const double z = f.u.row(i).dot(item) / temperature - lq;
      if (extra && !f.extra_owner.empty() && f.extra_owner[j - f.b] >= 0 &&
          f.extra_owner[j - f.b] != i) {
        continue;  // another row's own extra
      }
      if (j == i) {
        pos = z;
      } else if (id != f.ids[i]) {
        neg.push_back(z);
      }
    }
    std::vector<double> neg_w(neg.size(), 1.0);
    if (hard_k > 0) {
      std::vector<double> sorted = neg;
      std::sort(sorted.rbegin(), sorted.rend());
      const size_t k = std::min(sorted.size(), static_cast<size_t>(hard_k));
      const double cut = k > 0 ? sorted[k - 1] : std::numeric_limits<double>::infinity();
      std::vector<double> kept;
      for (double z : neg) {
        if (z >= cut) {
          kept.push_back(z);
        } else if (!hard_only) {
          kept.push_back(z);
        }
      }
      neg_w.assign(kept.size(), 1.0);
      for (size_t c = 0; c < kept.size(); ++c) {
        if (kept[c] >= cut) neg_w[c] = hard_w;
      }
      neg = kept;
    }
    const double w = f.weights[i], y = f.labels[i];
    if (kind == LossKind::kSoftmax) {
      double sum = std::exp(pos);
      for (size_t c = 0; c < neg.size(); ++c) sum += neg_w[c] * std::exp(neg[c]);
      total += w * y * (std::log(sum) - pos);
    } else {
      total += w * (y * Softplus(-pos) + (1 - y) * Softplus(pos));
      for (double z : neg) total += neg_weight / neg.size() * Softplus(z);
    }
  }
  return total / f.b;
}

class LossKindTest : public ::testing::TestWithParam<LossKind> {};

TEST_P(LossKindTest, MatchesReferenceAndGradientCheck) {
  LossOptions options;
  options.kind = GetParam();
  options.temperature = 0.5;
  options.negative_weight = 2.0;
  auto loss = std::move(RetrievalLoss<double>::Create(options)).value();
  Fixture f;
  auto value = loss->Compute(f.Batch());
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_NEAR(*value, ReferenceLoss(f, GetParam(), 0.5, 2.0), 1e-12);

  Mat<double> du = loss->d_user(), dv = loss->d_item(), dx = loss->d_extra();
  ASSERT_EQ(dx.rows(), 3);
  auto objective = [&] { return loss->Compute(f.Batch()).value(); };
  ExpectGradientMatches("d_user", Span(f.u), Span(du), objective);
  ExpectGradientMatches("d_item", Span(f.v), Span(dv), objective);
  ExpectGradientMatches("d_extra", Span(f.x), Span(dx), objective);
}

INSTANTIATE_TEST_SUITE_P(Kinds, LossKindTest,
                         ::testing::Values(LossKind::kSoftmax, LossKind::kBce));

// Per-row extras (mined negatives): an owned column is a negative of its row only.
// Extra 1 (id 8) is owned by row 1, whose positive it is: masked in every row.
TEST(LossTest, PerRowExtrasMatchReferenceAndGradientCheck) {
  for (LossKind kind : {LossKind::kSoftmax, LossKind::kBce}) {
    for (int hard : {0, 2}) {
      SCOPED_TRACE(::testing::Message() << "kind " << static_cast<int>(kind) << " hard " << hard);
      LossOptions options;
      options.kind = kind;
      options.temperature = 0.5;
      options.negative_weight = 2.0;
      options.hard_negatives = hard;
      options.hard_only = hard > 0;
      auto loss = std::move(RetrievalLoss<double>::Create(options)).value();
      Fixture f;
      f.extra_owner = {2, 1, -1};
      auto value = loss->Compute(f.Batch());
      ASSERT_TRUE(value.ok()) << value.status();
      EXPECT_NEAR(*value, ReferenceLoss(f, kind, 0.5, 2.0, hard, 1.0, hard > 0), 1e-12);
      for (int i = 0; i < f.b; ++i) {
        // Row 2's own extra (with hard_only it may lose to harder columns).
        if (i != 2 || hard == 0) {
          EXPECT_EQ(std::isfinite(loss->logits()(i, f.b + 0)), i == 2) << i;
        }
        EXPECT_FALSE(std::isfinite(loss->logits()(i, f.b + 1))) << i;
      }
      Mat<double> du = loss->d_user(), dv = loss->d_item(), dx = loss->d_extra();
      EXPECT_EQ(dx.row(1).norm(), 0.0);  // a column masked everywhere has no gradient
      auto objective = [&] { return loss->Compute(f.Batch()).value(); };
      ExpectGradientMatches("d_user", Span(f.u), Span(du), objective);
      ExpectGradientMatches("d_item", Span(f.v), Span(dv), objective);
      ExpectGradientMatches("d_extra", Span(f.x), Span(dx), objective);
    }
  }
  // An owner outside [-1, B) is refused.
  auto loss = std::move(RetrievalLoss<double>::Create(LossOptions())).value();
  Fixture f;
  f.extra_owner = {0, 5, -1};
  EXPECT_FALSE(loss->Compute(f.Batch()).ok());
  f.extra_owner = {0, -2, -1};
  EXPECT_FALSE(loss->Compute(f.Batch()).ok());
  f.extra_owner = {0, 1};
  EXPECT_FALSE(loss->Compute(f.Batch()).ok());
}

// Hard negatives: value against the reference and central differences in double, for
// up-weighting (softmax), keep-only (softmax and BCE) and K above the negatives a row has.
TEST(LossTest, HardNegativesMatchReferenceAndGradientCheck) {
  struct Case {
    LossKind kind;
    int k;
    double w;
    bool only;
  };
  for (const Case& c :
       {Case{LossKind::kSoftmax, 2, 4.0, false}, Case{LossKind::kSoftmax, 3, 1.0, true},
        Case{LossKind::kSoftmax, 2, 3.0, true}, Case{LossKind::kBce, 2, 1.0, true},
        Case{LossKind::kSoftmax, 100, 2.0, false}}) {
    SCOPED_TRACE(::testing::Message() << "kind " << static_cast<int>(c.kind) << " k " << c.k
                                      << " w " << c.w << " only " << c.only);
    LossOptions options;
    options.kind = c.kind;
    options.temperature = 0.5;
    options.negative_weight = 2.0;
    options.hard_negatives = c.k;
    options.hard_weight = c.w;
    options.hard_only = c.only;
    auto loss = std::move(RetrievalLoss<double>::Create(options)).value();
    Fixture f;
    auto value = loss->Compute(f.Batch());
    ASSERT_TRUE(value.ok()) << value.status();
    EXPECT_NEAR(*value, ReferenceLoss(f, c.kind, 0.5, 2.0, c.k, c.w, c.only), 1e-12);
    // A row keeps its positive and at most k negatives when hard_only.
    if (c.only) {
      for (int i = 0; i < f.b; ++i) {
        int finite = 0;
        for (int j = 0; j < f.b + f.n; ++j) finite += std::isfinite(loss->logits()(i, j));
        EXPECT_LE(finite, c.k + 1) << "row " << i;
      }
    }
    Mat<double> du = loss->d_user(), dv = loss->d_item(), dx = loss->d_extra();
    auto objective = [&] { return loss->Compute(f.Batch()).value(); };
    ExpectGradientMatches("d_user", Span(f.u), Span(du), objective);
    ExpectGradientMatches("d_item", Span(f.v), Span(dv), objective);
    ExpectGradientMatches("d_extra", Span(f.x), Span(dx), objective);
  }
  // Up-weighting the hardest negatives raises the loss; K = 0 is the plain loss.
  LossOptions plain;
  plain.temperature = 0.5;
  LossOptions hard = plain;
  hard.hard_negatives = 2;
  hard.hard_weight = 4.0;
  Fixture f;
  const double base = RetrievalLoss<double>::Create(plain).value()->Compute(f.Batch()).value();
  EXPECT_GT(RetrievalLoss<double>::Create(hard).value()->Compute(f.Batch()).value(), base);
}

TEST(LossTest, HardNegativeOptionsAreValidated) {
  LossOptions o;
  o.hard_negatives = -1;
  EXPECT_FALSE(o.Validate().ok());
  o.hard_negatives = 4;
  o.hard_weight = 0.5;
  EXPECT_FALSE(o.Validate().ok());
  o.hard_weight = std::numeric_limits<double>::infinity();
  EXPECT_FALSE(o.Validate().ok());
  o.hard_weight = 2.0;
  EXPECT_TRUE(o.Validate().ok());
  o.kind = LossKind::kBce;
  EXPECT_FALSE(o.Validate().ok());  // weighting is softmax-only
  o.hard_weight = 1.0;
  o.hard_only = true;
  EXPECT_TRUE(o.Validate().ok());
}

TEST(LossTest, DuplicatesAreMaskedNotNegatives) {
  auto loss = std::move(RetrievalLoss<double>::Create({})).value();
  Fixture f;
  ASSERT_TRUE(loss->Compute(f.Batch()).ok());
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(loss->logits()(0, 3), -inf);  // row 0 and row 3 share item 7
  EXPECT_EQ(loss->logits()(3, 0), -inf);
  EXPECT_EQ(loss->logits()(1, 5 + 1), -inf);  // extra item 8 is row 1's positive
  EXPECT_TRUE(std::isfinite(loss->logits()(0, 0)));
  EXPECT_TRUE(std::isfinite(loss->logits()(0, 1)));
  // Without ids nothing is masked and the loss changes.
  LossBatch<double> no_ids = f.Batch();
  no_ids.item_ids = {};
  no_ids.extra_item_ids = {};
  const double masked = loss->Compute(f.Batch()).value();
  const double unmasked = loss->Compute(no_ids).value();
  EXPECT_GT(unmasked, masked);
  EXPECT_TRUE(std::isfinite(loss->logits()(0, 3)));
}

TEST(LossTest, SoftmaxKnownValueWithLogQ) {
  // B = 2, d = 1, temperature 1: z = [[1*1 - a, 1*2 - b], [0 - a, 0 - b]].
  Mat<double> u(2, 1), v(2, 1);
  u << 1, 0;
  v << 1, 2;
  std::vector<double> log_q = {std::log(0.5), std::log(0.1)};
  LossOptions options;
  options.temperature = 1.0;
  auto loss = std::move(RetrievalLoss<double>::Create(options)).value();
  LossBatch<double> batch(View(u), View(v));
  batch.item_log_q = log_q;
  const double z00 = 1 - log_q[0], z01 = 2 - log_q[1], z10 = -log_q[0], z11 = -log_q[1];
  const double want =
      0.5 * ((std::log(std::exp(z00) + std::exp(z01)) - z00) +
             (std::log(std::exp(z10) + std::exp(z11)) - z11));
  EXPECT_NEAR(loss->Compute(batch).value(), want, 1e-12);
  // logQ raises the logit of the rarer item (q = 0.1) relative to the popular one.
  EXPECT_NEAR(loss->logits()(1, 1) - loss->logits()(1, 0), std::log(0.5) - std::log(0.1), 1e-12);
}

TEST(LossTest, RejectsBadBatches) {
  auto loss = std::move(RetrievalLoss<double>::Create({})).value();
  Fixture f;
  Mat<double> short_v = RandomMat(4, 4, 5), wide_x = RandomMat(3, 5, 6);
  EXPECT_EQ(loss->Compute(f.Batch(f.u, short_v, f.x)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(loss->Compute(f.Batch(f.u, f.v, wide_x)).ok());
  std::vector<double> three = {1, 1, 1}, negative = {1, -1, 1, 1, 1}, big = {1, 2, 1, 1, 1};
  // Computes the fixture's batch after `mutate` changed its side information.
  auto ok_after = [&](auto mutate) {
    LossBatch<double> batch = f.Batch();
    mutate(batch);
    return loss->Compute(batch).ok();
  };
  EXPECT_FALSE(ok_after([&](LossBatch<double>& b) { b.weights = three; }));
  EXPECT_FALSE(ok_after([&](LossBatch<double>& b) { b.weights = negative; }));
  EXPECT_FALSE(ok_after([&](LossBatch<double>& b) { b.labels = big; }));
  EXPECT_TRUE(ok_after([&](LossBatch<double>& b) { b.extra_item_ids = {}; }));
  EXPECT_FALSE(loss->Compute(LossBatch<double>{}).ok());
  LossOptions options;
  options.temperature = 0;
  EXPECT_FALSE(RetrievalLoss<double>::Create(options).ok());
  EXPECT_FALSE(ParseLossKind("hinge").ok());
}

TEST(LossTest, FlopsPerExample) {
  EXPECT_DOUBLE_EQ(LogitsFlopsPerExample(1024, 0, 128), 6.0 * 1024 * 128);
  EXPECT_DOUBLE_EQ(LogitsFlopsPerExample(1024, 64, 128), 6.0 * 1088 * 128);
}

TEST(EngagementTest, MergesSignalsIntoLabelAndWeight) {
  EngagementMergeOptions options;
  options.signal_weights = {1.0f, 2.0f, 4.0f};  // click, like, share
  options.negative_weight = 0.5f;
  options.max_weight = 6.0f;
  std::vector<float> signals = {1, 1, 0,   // click + like
                                0, 0, 0,   // nothing: a negative
                                1, 1, 1,   // everything: capped at 6
                                0, 0.5, 0};  // fractional signal
  std::vector<float> labels(4), weights(4);
  ASSERT_TRUE(MergeEngagementSignals(options, signals, labels, weights).ok());
  EXPECT_EQ(labels, (std::vector<float>{1, 0, 1, 1}));
  EXPECT_EQ(weights, (std::vector<float>{3, 0.5f, 6, 1}));

  std::vector<float> negative = {1, -1, 0};
  EXPECT_FALSE(MergeEngagementSignals(options, negative, std::span(labels).first(1),
                                      std::span(weights).first(1))
                   .ok());
  EXPECT_FALSE(MergeEngagementSignals(options, signals, labels, std::span(weights).first(3)).ok());
  options.signal_weights = {};
  EXPECT_FALSE(MergeEngagementSignals(options, {}, {}, {}).ok());
}

}  // namespace
}  // namespace towerps::models
