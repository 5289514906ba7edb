// Test-only helpers: finite-difference gradient checks in double precision.
//
// A check perturbs each coordinate of a buffer by +-eps, evaluates a scalar
// objective twice (central difference) and compares with the analytic
// gradient: |num - ana| <= atol + rtol * max(|num|, |ana|).
#ifndef TOWERPS_MODELS_GRAD_CHECK_H_
#define TOWERPS_MODELS_GRAD_CHECK_H_

#include <algorithm>
#include <cmath>
#include <functional>
#include <span>
#include <string>

#include "gtest/gtest.h"
#include "models/random.h"
#include "models/tensor.h"

namespace towerps::models::testing {

struct Tolerance {
  double eps = 1e-6;
  double rtol = 1e-5;
  double atol = 1e-8;
};

// Checks `analytic` (same size as `x`) against central differences of
// `objective` with respect to `x` (modified in place and restored).
// Adds a gtest failure naming `what` and the first bad coordinate.
inline void ExpectGradientMatches(const std::string& what, std::span<double> x,
                                  std::span<const double> analytic,
                                  const std::function<double()>& objective,
                                  const Tolerance& tol = {}) {
  ASSERT_EQ(x.size(), analytic.size()) << what;
  int bad = 0;
  for (size_t k = 0; k < x.size(); ++k) {
    const double saved = x[k];
    x[k] = saved + tol.eps;
    const double plus = objective();
    x[k] = saved - tol.eps;
    const double minus = objective();
    x[k] = saved;
    const double numeric = (plus - minus) / (2 * tol.eps);
    const double scale = std::max(std::abs(numeric), std::abs(analytic[k]));
    if (std::abs(numeric - analytic[k]) > tol.atol + tol.rtol * scale && bad++ < 3) {
      ADD_FAILURE() << what << "[" << k << "]: numeric " << numeric << " analytic "
                    << analytic[k];
    }
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << x.size() << " coordinates differ";
}

// A rows x cols matrix uniform in [-scale, scale], deterministic for seed.
inline Mat<double> RandomMat(int rows, int cols, uint64_t seed, double scale = 1.0) {
  SplitMix64 rng(seed);
  Mat<double> m(rows, cols);
  for (int i = 0; i < m.size(); ++i) m.data()[i] = (2 * rng.NextDouble() - 1) * scale;
  return m;
}

inline std::span<double> Span(Mat<double>& m) { return {m.data(), static_cast<size_t>(m.size())}; }
inline std::span<const double> Span(const Mat<double>& m) {
  return {m.data(), static_cast<size_t>(m.size())};
}

// sum(r .* y): a scalar objective whose gradient with respect to y is r.
inline double Project(const Mat<double>& y, const Mat<double>& r) {
  return (y.array() * r.array()).sum();
}

}  // namespace towerps::models::testing

#endif  // TOWERPS_MODELS_GRAD_CHECK_H_
