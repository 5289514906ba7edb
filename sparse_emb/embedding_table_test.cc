#include "sparse_emb/embedding_table.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sparse_emb/initializer.h"
#include "sparse_emb/row_layout.h"

namespace towerps::sparse_emb {
namespace {

TableConfig SmallConfig(int dim = 8) {
  TableConfig c;
  c.name = "test";
  c.dim = dim;
  c.num_stripes = 4;
  c.initializer.kind = InitKind::kUniform;
  c.initializer.scale = 0.5f;
  c.initializer.seed = 42;
  c.optimizer.kind = OptimizerKind::kSgd;
  return c;
}

std::unique_ptr<EmbeddingTable> MakeTable(const TableConfig& c, MetricsRegistry* m = nullptr) {
  auto table = EmbeddingTable::Create(c, m);
  EXPECT_TRUE(table.ok()) << table.status();
  return std::move(table).value();
}

std::vector<float> PullOne(EmbeddingTable* t, uint64_t key, int64_t step) {
  std::vector<float> out(t->dim());
  t->Pull({&key, 1}, step, out.data());
  return out;
}

std::vector<float> LookupOne(const EmbeddingTable& t, uint64_t key) {
  std::vector<float> out(t.dim());
  t.Lookup({&key, 1}, out.data());
  return out;
}

TEST(EmbeddingTableTest, CreateRejectsBadConfig) {
  TableConfig c = SmallConfig();
  c.dim = 2;
  EXPECT_EQ(EmbeddingTable::Create(c, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(EmbeddingTableTest, InitIsDeterministicPerSeedAndKey) {
  TableConfig c = SmallConfig(16);
  auto a = MakeTable(c);
  c.num_stripes = 32;  // a differently sharded server must still agree
  auto b = MakeTable(c);
  c.initializer.seed = 43;
  auto other_seed = MakeTable(c);
  std::vector<uint64_t> keys = {1, 2, 3, 1ull << 60, 987654321};
  std::vector<float> ra(keys.size() * 16), rb(keys.size() * 16), rc(keys.size() * 16);
  a->Pull(keys, 1, ra.data());
  std::vector<uint64_t> reversed(keys.rbegin(), keys.rend());
  b->Pull(reversed, 7, rb.data());
  other_seed->Pull(keys, 1, rc.data());
  for (size_t k = 0; k < keys.size(); ++k) {
    std::vector<float> want(16);
    InitializeRow(SmallConfig(16).initializer, keys[k], 16, want.data());
    int differ = 0;
    for (int d = 0; d < 16; ++d) {
      EXPECT_EQ(ra[k * 16 + d], rb[(keys.size() - 1 - k) * 16 + d]);
      EXPECT_EQ(ra[k * 16 + d], want[d]);
      differ += ra[k * 16 + d] != rc[k * 16 + d];
    }
    EXPECT_GT(differ, 12) << "seed change must change the row of key " << keys[k];
  }
  // Different keys differ.
  EXPECT_NE(std::vector<float>(ra.begin(), ra.begin() + 16),
            std::vector<float>(ra.begin() + 16, ra.begin() + 32));
}

void ExpectMoments(const InitializerConfig& init, double want_mean, double want_std,
                   double bound) {
  const int dim = 64, rows = 2000;
  std::vector<float> v(dim);
  double sum = 0, sq = 0;
  for (int r = 0; r < rows; ++r) {
    InitializeRow(init, static_cast<uint64_t>(r) * 7919, dim, v.data());
    for (float x : v) {
      ASSERT_LE(std::fabs(x), bound);
      sum += x;
      sq += x * x;
    }
  }
  const double n = static_cast<double>(dim) * rows;
  const double mean = sum / n;
  const double stddev = std::sqrt(sq / n - mean * mean);
  EXPECT_NEAR(mean, want_mean, 0.01 * bound);
  EXPECT_NEAR(stddev, want_std, 0.02 * want_std);
}

TEST(InitializerTest, DistributionsRoughlyRight) {
  InitializerConfig uniform{InitKind::kUniform, 0.1f, 3};
  ExpectMoments(uniform, 0.0, 0.1 / std::sqrt(3.0), 0.1);
  // Normal truncated at 2 sigma: std = sigma * sqrt(1 - 4 phi(2) / (2 Phi(2) - 1)).
  InitializerConfig normal{InitKind::kTruncatedNormal, 0.2f, 3};
  ExpectMoments(normal, 0.0, 0.2 * 0.87962, 0.4);
  InitializerConfig zeros{InitKind::kZeros, 1.0f, 3};
  ExpectMoments(zeros, 0.0, 0.0, 0.0);
}

TEST(EmbeddingTableTest, PullCreatesLookupDoesNot) {
  auto t = MakeTable(SmallConfig());
  EXPECT_EQ(LookupOne(*t, 5), std::vector<float>(8, 0.0f));
  EXPECT_EQ(t->size(), 0);
  std::vector<uint64_t> keys = {5, 6, 5, 5};
  std::vector<float> out(4 * 8);
  t->Pull(keys, 3, out.data());
  EXPECT_EQ(t->size(), 2);
  for (int d = 0; d < 8; ++d) {
    EXPECT_EQ(out[d], out[16 + d]);
    EXPECT_EQ(out[d], out[24 + d]);
  }
  EXPECT_EQ(LookupOne(*t, 5), std::vector<float>(out.begin(), out.begin() + 8));
  EXPECT_EQ(t->GetRowInfo(5)->last_step, 3);
  EXPECT_FALSE(t->GetRowInfo(7).has_value());
}

TEST(EmbeddingTableTest, AdmissionAfterMinCountSightings) {
  MetricsRegistry metrics;
  TableConfig c = SmallConfig();
  c.admission.min_count = 3;
  c.admission.sketch_width = 4096;
  auto t = MakeTable(c, &metrics);
  const std::vector<float> zeros(8, 0.0f);
  EXPECT_EQ(PullOne(t.get(), 100, 1), zeros);
  EXPECT_EQ(PullOne(t.get(), 100, 2), zeros);
  EXPECT_EQ(t->size(), 0);
  std::vector<float> third = PullOne(t.get(), 100, 3);
  EXPECT_NE(third, zeros);
  EXPECT_EQ(t->size(), 1);
  std::vector<float> want(8);
  InitializeRow(c.initializer, 100, 8, want.data());
  EXPECT_EQ(third, want);

  // A push of a not-admitted key only counts; the admitting push creates and updates.
  const uint64_t key = 200;
  std::vector<float> grad(8, 1.0f);
  t->Push({&key, 1}, grad.data(), 0.5f, 4);
  t->Push({&key, 1}, grad.data(), 0.5f, 5);
  EXPECT_FALSE(t->GetRowInfo(key).has_value());
  t->Push({&key, 1}, grad.data(), 0.5f, 6);
  InitializeRow(c.initializer, key, 8, want.data());
  std::vector<float> got = LookupOne(*t, key);
  for (int d = 0; d < 8; ++d) EXPECT_FLOAT_EQ(got[d], want[d] - 0.5f);
  EXPECT_EQ(t->GetRowInfo(key)->update_count, 1u);

  EXPECT_EQ(metrics.GetCounter("towerps_sparse_emb_test_admitted_total")->value(), 2);
  EXPECT_EQ(metrics.GetCounter("towerps_sparse_emb_test_rejected_total")->value(), 4);
  EXPECT_EQ(metrics.GetGauge("towerps_sparse_emb_test_rows")->value(), 2.0);
}

TEST(EmbeddingTableTest, TtlEviction) {
  MetricsRegistry metrics;
  TableConfig c = SmallConfig();
  c.eviction.ttl_steps = 10;
  auto t = MakeTable(c, &metrics);
  for (uint64_t k = 0; k < 100; ++k) PullOne(t.get(), k, static_cast<int64_t>(k));
  const std::vector<float> before = LookupOne(*t, 3);
  // Key 3 is touched again at step 95; keys < 50 otherwise idle.
  const uint64_t key3 = 3;
  std::vector<float> grad(8, 0.0f);
  t->Push({&key3, 1}, grad.data(), 0.1f, 95);
  EXPECT_EQ(t->Evict(60), 49);  // rows last touched before step 50, except key 3
  EXPECT_EQ(t->size(), 51);
  EXPECT_FALSE(t->GetRowInfo(0).has_value());
  EXPECT_FALSE(t->GetRowInfo(49).has_value());
  EXPECT_TRUE(t->GetRowInfo(3).has_value());
  EXPECT_TRUE(t->GetRowInfo(50).has_value());
  EXPECT_EQ(metrics.GetCounter("towerps_sparse_emb_test_evicted_total")->value(), 49);
  // An evicted key comes back with its deterministic initial row.
  std::vector<float> want(8);
  InitializeRow(c.initializer, 0, 8, want.data());
  EXPECT_EQ(PullOne(t.get(), 0, 61), want);
  EXPECT_EQ(LookupOne(*t, 3), before);
}

TEST(EmbeddingTableTest, BudgetEvictsLeastRecentlyTouched) {
  TableConfig c = SmallConfig();
  c.num_stripes = 1;
  c.eviction.max_rows = 64;
  auto t = MakeTable(c);
  for (uint64_t k = 0; k < 64; ++k) PullOne(t.get(), k, static_cast<int64_t>(k));
  EXPECT_EQ(t->size(), 64);
  PullOne(t.get(), 0, 100);  // key 0 becomes the most recent
  PullOne(t.get(), 64, 101);  // over budget: evict down to 62 rows (64 - 64/32)
  EXPECT_EQ(t->size(), 62);
  EXPECT_TRUE(t->GetRowInfo(0).has_value());
  for (uint64_t k = 1; k <= 3; ++k) EXPECT_FALSE(t->GetRowInfo(k).has_value()) << k;
  for (uint64_t k = 4; k <= 64; ++k) EXPECT_TRUE(t->GetRowInfo(k).has_value()) << k;
  // Many more inserts never exceed the budget.
  for (uint64_t k = 1000; k < 3000; ++k) PullOne(t.get(), k, static_cast<int64_t>(k));
  EXPECT_LE(t->size(), 64);
  EXPECT_TRUE(t->GetRowInfo(2999).has_value());
}

TEST(EmbeddingTableTest, GrowthAndDeletionKeepAllRows) {
  TableConfig c = SmallConfig(4);
  c.num_stripes = 2;
  c.eviction.ttl_steps = 1;
  auto t = MakeTable(c);
  const int n = 150000;
  std::vector<uint64_t> keys(n);
  for (int i = 0; i < n; ++i) keys[i] = Mix64(i) | 1;  // arbitrary 64-bit keys
  std::vector<float> out(static_cast<size_t>(n) * 4);
  for (int i = 0; i < n; i += 4096) {
    const int m = std::min(4096, n - i);
    // Even batches at step 10, odd at 0: TTL eviction at step 5 removes the odd ones.
    t->Pull({keys.data() + i, static_cast<size_t>(m)}, (i / 4096) % 2 == 0 ? 10 : 0,
            out.data());
  }
  EXPECT_EQ(t->size(), n);
  t->Lookup(keys, out.data());
  std::vector<float> want(4);
  for (int i = 0; i < n; ++i) {
    InitializeRow(c.initializer, keys[i], 4, want.data());
    ASSERT_EQ(std::vector<float>(out.begin() + 4 * i, out.begin() + 4 * i + 4), want) << i;
  }
  const int64_t evicted = t->Evict(5);
  EXPECT_GT(evicted, 0);
  EXPECT_EQ(t->size(), n - evicted);
  t->Lookup(keys, out.data());
  int64_t missing = 0;
  for (int i = 0; i < n; ++i) {
    const bool kept = (i / 4096) % 2 == 0;
    EXPECT_EQ(t->GetRowInfo(keys[i]).has_value(), kept) << i;
    if (!kept) {
      ++missing;
      continue;
    }
    InitializeRow(c.initializer, keys[i], 4, want.data());
    ASSERT_EQ(std::vector<float>(out.begin() + 4 * i, out.begin() + 4 * i + 4), want) << i;
  }
  EXPECT_EQ(missing, evicted);
}

// Several threads push known gradients to overlapping keys while others pull: with
// SGD, zero init, gradient 1 and lr 1 every sum is exact, so the final rows must be
// exactly -(number of pushes) in every coordinate, and no pull sees a torn row.
TEST(EmbeddingTableTest, ConcurrentPushPullSumsExactly) {
  TableConfig c = SmallConfig(16);
  c.initializer.kind = InitKind::kZeros;
  c.num_stripes = 8;
  auto t = MakeTable(c);
  const int kPushers = 3, kPullers = 2, kRounds = 200, kKeys = 2000;
  std::vector<uint64_t> keys(kKeys);
  std::iota(keys.begin(), keys.end(), 1000);
  std::vector<float> grads(static_cast<size_t>(kKeys) * 16, 1.0f);
  std::atomic<bool> torn{false};
  std::vector<std::thread> threads;
  for (int p = 0; p < kPushers; ++p) {
    threads.emplace_back([&, p] {
      for (int r = 0; r < kRounds; ++r) {
        // Each pusher sends a different slice order; keys are unique within a batch.
        const size_t half = static_cast<size_t>((p * 700) % kKeys);
        t->Push({keys.data() + half, keys.size() - half}, grads.data(), 1.0f, r);
        t->Push({keys.data(), half}, grads.data(), 1.0f, r);
      }
    });
  }
  for (int p = 0; p < kPullers; ++p) {
    threads.emplace_back([&] {
      std::vector<float> out(static_cast<size_t>(kKeys) * 16);
      for (int r = 0; r < kRounds / 2; ++r) {
        t->Pull(keys, r, out.data());
        for (int k = 0; k < kKeys; ++k) {
          const float v = out[k * 16];
          for (int d = 1; d < 16; ++d) {
            if (out[k * 16 + d] != v) torn = true;
          }
          if (v > 0 || v < -kPushers * kRounds || v != std::floor(v)) torn = true;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_FALSE(torn.load());
  EXPECT_EQ(t->size(), kKeys);
  std::vector<float> out(static_cast<size_t>(kKeys) * 16);
  t->Lookup(keys, out.data());
  for (float v : out) ASSERT_EQ(v, -static_cast<float>(kPushers * kRounds));
  EXPECT_EQ(t->GetRowInfo(keys[0])->update_count, static_cast<uint32_t>(kPushers * kRounds));
}

// Pull and Lookup read existing rows under shared stripe locks (raising last-touched
// steps with plain atomic stores) while other threads push (rows written in place),
// create rows (index growth frees the old index), evict by budget and TTL, and
// snapshot (every stripe locked exclusively). A read walk that skipped a stripe's lock
// reads half-pushed rows or a freed index (a walk locking only stripe 0 fails here in
// about half the runs on 2 cores); a lock-order mistake deadlocks. With SGD, zero init, gradient 1 and lr 1
// every row is some exact non-positive integer in every coordinate, so a torn or
// garbage read is detected.
TEST(EmbeddingTableTest, ConcurrentReadWalksWithPushCreateEvictAndSave) {
  constexpr int kDim = 64, kHot = 64, kRounds = 3000, kPullers = 2;
  TableConfig c = SmallConfig(kDim);
  c.initializer.kind = InitKind::kZeros;
  c.num_stripes = 8;
  c.eviction.max_rows = 20000;
  c.eviction.ttl_steps = 500;
  auto t = MakeTable(c);
  const std::string path = testing::TempDir() + "/sparse_emb_read_walk_stress.snap";
  std::vector<uint64_t> hot(kHot);
  std::iota(hot.begin(), hot.end(), 1);
  const std::vector<float> grads(static_cast<size_t>(kHot) * kDim, 1.0f);
  std::atomic<int> torn{0};
  std::atomic<int> pullers_left{kPullers};
  // rows: out[k * kDim, (k + 1) * kDim) for k in [0, n); fresh rows must be zeros.
  auto check = [&](const float* out, int n, bool fresh) {
    for (int k = 0; k < n; ++k) {
      const float v = out[k * kDim];
      bool ok = v <= 0 && v >= -kRounds && v == std::floor(v) && (!fresh || v == 0);
      for (int d = 1; d < kDim; ++d) ok &= out[k * kDim + d] == v;
      if (!ok) ++torn;
    }
  };
  std::vector<std::thread> threads;
  for (int p = 0; p < kPullers; ++p) {
    threads.emplace_back([&, p] {
      // Each batch: the hot keys plus keys never seen before (rows created, indexes
      // grown, the budget enforced by evicting the least recently touched rows).
      std::vector<uint64_t> batch(hot);
      batch.resize(2 * kHot);
      std::vector<float> out(batch.size() * kDim);
      for (int r = 0; r < kRounds; ++r) {
        for (int k = 0; k < kHot; ++k) {
          batch[kHot + k] = (uint64_t{1} << 40) * (p + 1) + static_cast<uint64_t>(r) * kHot + k;
        }
        t->Pull(batch, r, out.data());
        check(out.data(), kHot, /*fresh=*/false);
        check(out.data() + kHot * kDim, kHot, /*fresh=*/true);
        t->Lookup(hot, out.data());
        check(out.data(), kHot, /*fresh=*/false);
      }
      --pullers_left;
    });
  }
  threads.emplace_back([&] {
    for (int r = 0; r < kRounds; ++r) t->Push(hot, grads.data(), 1.0f, r);
  });
  threads.emplace_back([&] {
    // A pause between snapshots: Save blocks every stripe and fsyncs, so back-to-back
    // saves starved the pullers (minutes under AddressSanitizer).
    for (int64_t r = 0; pullers_left.load() > 0; r += 100) {
      EXPECT_TRUE(t->Save(path).ok());
      t->Evict(r);
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  for (auto& th : threads) th.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_LE(t->size(), c.eviction.max_rows);
  std::remove(path.c_str());
}

TEST(Float16Test, ConversionsRoundTrip) {
  EXPECT_EQ(HalfToFloat(FloatToHalf(1.0f)), 1.0f);
  EXPECT_EQ(HalfToFloat(FloatToHalf(-2.5f)), -2.5f);
  EXPECT_EQ(HalfToFloat(FloatToHalf(65504.0f)), 65504.0f);
  EXPECT_TRUE(std::isinf(HalfToFloat(FloatToHalf(70000.0f))));
  EXPECT_EQ(HalfToFloat(FloatToHalf(std::ldexp(1.0f, -24))), std::ldexp(1.0f, -24));  // subnormal
  EXPECT_EQ(HalfToFloat(FloatToHalf(std::ldexp(3.0f, -20))), std::ldexp(3.0f, -20));
  EXPECT_EQ(HalfToFloat(FloatToHalf(1e-9f)), 0.0f);
  EXPECT_TRUE(std::isnan(HalfToFloat(FloatToHalf(NAN))));
  EXPECT_EQ(HalfToFloat(FloatToHalf(1.0f + 1.0f / 4096)), 1.0f);  // ties to even
  EXPECT_EQ(Bf16ToFloat(FloatToBf16(1.0f)), 1.0f);
  EXPECT_EQ(Bf16ToFloat(FloatToBf16(-3.0f)), -3.0f);
  for (float x = -4.0f; x < 4.0f; x += 0.01f) {
    EXPECT_NEAR(HalfToFloat(FloatToHalf(x)), x, std::fabs(x) * (1.0f / 2048) + 1e-7f);
    EXPECT_NEAR(Bf16ToFloat(FloatToBf16(x)), x, std::fabs(x) * (1.0f / 256) + 1e-30f);
  }
}

class LowPrecisionTest : public testing::TestWithParam<DType> {};

TEST_P(LowPrecisionTest, StorageTracksFp32WithinTolerance) {
  const float rel = GetParam() == DType::kFp16 ? 1.0f / 1024 : 1.0f / 128;
  TableConfig c = SmallConfig(32);
  c.optimizer.kind = OptimizerKind::kRowwiseAdagrad;
  auto ref = MakeTable(c);
  c.dtype = GetParam();
  auto low = MakeTable(c);
  EXPECT_LT(low->row_bytes(), ref->row_bytes());
  std::vector<uint64_t> keys(64);
  std::iota(keys.begin(), keys.end(), 0);
  std::vector<float> a(64 * 32), b(64 * 32), grads(64 * 32);
  ref->Pull(keys, 0, a.data());
  low->Pull(keys, 0, b.data());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(b[i], a[i], std::fabs(a[i]) * rel + 1e-6f);
  for (int step = 1; step <= 5; ++step) {
    for (size_t i = 0; i < grads.size(); ++i) grads[i] = std::sin(0.1f * i + step);
    ref->Push(keys, grads.data(), 0.01f, step);
    low->Push(keys, grads.data(), 0.01f, step);
  }
  ref->Lookup(keys, a.data());
  low->Lookup(keys, b.data());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(b[i], a[i], 0.5f * (rel * 5) + 1e-3f) << i;
}

INSTANTIATE_TEST_SUITE_P(Dtypes, LowPrecisionTest, testing::Values(DType::kFp16, DType::kBf16));

}  // namespace
}  // namespace towerps::sparse_emb
