// bench/run.sh exact_topk: exact top-100 retrieval (index/exact_topk.h) of 5k
// L2-normalised 64-d queries over 100k items with ~20 exclusions per query.
//   exact_topk_<config>: queries/s of ExactTopK under one threading setup, beside
//     a naive loop (Eigen matrix-vector per query, no BLAS, then partial_sort of
//     all scores) on one thread, measured in the same run on a query subset.
//   sgemm_only_2t: queries/s of just the blocked sgemm on 2 OpenBLAS threads (the
//     compute bound the selection adds to), beside ExactTopK with 2 threads.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "bench/bench_util.h"
#include "glog/logging.h"
#include "index/exact_topk.h"

namespace towerps::bench {
namespace {

std::vector<float> RandomNormalised(int64_t rows, int d, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> out(rows * d);
  for (int64_t r = 0; r < rows; ++r) {
    float norm = 0;
    for (int c = 0; c < d; ++c) norm += (out[r * d + c] = normal(rng)) * out[r * d + c];
    for (int c = 0; c < d; ++c) out[r * d + c] /= std::sqrt(norm);
  }
  return out;
}

// One query at a time: Eigen gemv over all items, exclusions to -inf, then a
// partial_sort of every item index. Returns the ids so the work is kept.
std::vector<int32_t> NaiveTopK(const std::vector<float>& q, int64_t n, const std::vector<float>& v,
                               int64_t m, int d, int k, const std::vector<int64_t>& offsets,
                               const std::vector<int32_t>& excl) {
  using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Eigen::Map<const RowMajor> items(v.data(), m, d);
  Eigen::VectorXf scores(m);
  std::vector<int32_t> order(m), out;
  for (int64_t i = 0; i < n; ++i) {
    scores.noalias() = items * Eigen::Map<const Eigen::VectorXf>(q.data() + i * d, d);
    for (int64_t e = offsets[i]; e < offsets[i + 1]; ++e) {
      scores[excl[e]] = -std::numeric_limits<float>::infinity();
    }
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) {
      return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
    });
    out.insert(out.end(), order.begin(), order.begin() + k);
  }
  return out;
}

void Run(bool quick) {
  const int64_t n = quick ? 500 : 5000, m = quick ? 20000 : 100000, naive_n = quick ? 50 : 300;
  const int d = 64, k = 100, repeats = quick ? 1 : 3;
  const std::vector<float> q = RandomNormalised(n, d, 1);
  const std::vector<float> v = RandomNormalised(m, d, 2);
  std::mt19937 rng(3);
  std::uniform_int_distribution<int32_t> item(0, static_cast<int32_t>(m - 1));
  std::vector<int64_t> offsets = {0};
  std::vector<int32_t> excl;
  for (int64_t i = 0; i < n; ++i) {
    for (int e = 0; e < 20; ++e) excl.push_back(item(rng));
    offsets.push_back(static_cast<int64_t>(excl.size()));
  }

  const double naive_s = MedianSeconds(repeats, [&] {
    DoNotOptimize(NaiveTopK(q, naive_n, v, m, d, k, offsets, excl).data());
  });
  const double naive_qps = naive_n / naive_s;

  struct Config {
    std::string name;
    int threads;
    int blas_threads;
  };
  const Config configs[] = {{"1t_blas1", 1, 1}, {"1t_blas2", 1, 2}, {"2t", 2, 1}};
  double qps_2t = 0;
  for (const Config& c : configs) {
    openblas_set_num_threads(c.blas_threads);
    index::TopKOptions options;
    options.threads = c.threads;
    const double s = MedianSeconds(repeats, [&] {
      auto r = index::ExactTopK(q.data(), n, v.data(), m, d, k, offsets, excl, options);
      CHECK(r.ok()) << r.status();
      DoNotOptimize(r->ids.data());
    });
    PrintFigure({"exact_topk", "exact_topk_" + c.name, n / s, "queries/s", "naive_eigen_1t",
                 naive_qps});
    if (c.threads == 2) qps_2t = n / s;
  }

  openblas_set_num_threads(2);
  const int block = index::TopKOptions().query_block, tile = index::TopKOptions().item_block;
  std::vector<float> scores(static_cast<size_t>(block) * tile);
  const double sgemm_s = MedianSeconds(repeats, [&] {
    for (int64_t q0 = 0; q0 < n; q0 += block) {
      for (int64_t i0 = 0; i0 < m; i0 += tile) {
        const int nq = static_cast<int>(std::min<int64_t>(block, n - q0));
        const int ni = static_cast<int>(std::min<int64_t>(tile, m - i0));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, ni, d, 1.0f, q.data() + q0 * d,
                    d, v.data() + i0 * d, d, 0.0f, scores.data(), ni);
      }
    }
    DoNotOptimize(scores.data());
  });
  PrintFigure({"exact_topk", "sgemm_only_2t", n / sgemm_s, "queries/s", "exact_topk_2t",
               qps_2t});
  PrintFigure({"exact_topk", "sgemm_only_2t_gflops", 2.0 * n * m * d / sgemm_s / 1e9, "GFLOP/s",
               "", 0});
}

}  // namespace
}  // namespace towerps::bench

int main(int argc, char** argv) {
  towerps::bench::Run(towerps::bench::QuickMode(argc, argv));
  return 0;
}
