// The bench/ harness: timing helpers and the one JSON line per figure that
// bench/run.sh promises (DESIGN.md, "Contracts"):
//   {"suite":…, "name":…, "value":…, "unit":…, "peer":…, "peer_value":…, "ratio":…}
// Thread-compatible.
#ifndef TOWERPS_BENCH_BENCH_UTIL_H_
#define TOWERPS_BENCH_BENCH_UTIL_H_

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "common/json.h"

namespace towerps::bench {

struct Figure {
  std::string suite;
  std::string name;
  double value = 0;
  std::string unit;
  // Optional: what the figure is compared with, measured in the same run.
  std::string peer;
  double peer_value = 0;
};

// Prints one figure as a JSON line on stdout; ratio = value / peer_value.
inline void PrintFigure(const Figure& f) {
  JsonObject o;
  o.Add("suite", f.suite).Add("name", f.name).Add("value", f.value).Add("unit", f.unit);
  if (!f.peer.empty()) {
    o.Add("peer", f.peer).Add("peer_value", f.peer_value);
    o.Add("ratio", f.peer_value != 0 ? f.value / f.peer_value : 0.0);
  }
  std::printf("%s\n", o.ToString().c_str());
  std::fflush(stdout);
}

// The median of `values` (not empty).
inline double Median(std::vector<double> values) {
  std::nth_element(values.begin(), values.begin() + values.size() / 2, values.end());
  return values[values.size() / 2];
}

// Wall time of one call, in seconds.
template <typename Fn>
double Seconds(Fn&& fn) {
  auto start = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Runs `fn` `repeats` times and returns the median wall time in seconds.
template <typename Fn>
double MedianSeconds(int repeats, Fn&& fn) {
  std::vector<double> times;
  for (int i = 0; i < repeats; ++i) times.push_back(Seconds(fn));
  return Median(std::move(times));
}

// Runs every fn once per round, in turn, for `rounds` rounds, and returns each fn's
// results (results[f][round]). On a shared machine the load drifts; interleaving
// exposes a figure and its peers to the same drift.
template <typename T>
std::vector<std::vector<T>> InterleavedRounds(int rounds,
                                              const std::vector<std::function<T()>>& fns) {
  std::vector<std::vector<T>> results(fns.size());
  for (int r = 0; r < rounds; ++r) {
    for (size_t f = 0; f < fns.size(); ++f) results[f].push_back(fns[f]());
  }
  return results;
}

// The median wall time of each fn over interleaved rounds.
inline std::vector<double> InterleavedMedianSeconds(int rounds,
                                                    const std::vector<std::function<void()>>& fns) {
  std::vector<std::function<double()>> timed;
  for (const auto& fn : fns) timed.push_back([&fn] { return Seconds(fn); });
  std::vector<double> medians;
  for (auto& times : InterleavedRounds(rounds, timed)) medians.push_back(Median(std::move(times)));
  return medians;
}

// True when argv holds --quick (smaller sizes for a smoke run).
inline bool QuickMode(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--quick") return true;
  }
  return false;
}

// Keeps the compiler from optimising a value away.
template <typename T>
inline void DoNotOptimize(const T& value) {
  asm volatile("" : : "r,m"(value) : "memory");
}

}  // namespace towerps::bench

#endif  // TOWERPS_BENCH_BENCH_UTIL_H_
