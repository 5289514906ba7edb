// The bench/ harness: timing helpers and the one JSON line per figure that
// bench/run.sh promises (DESIGN.md, "Contracts"):
//   {"suite":…, "name":…, "value":…, "unit":…, "peer":…, "peer_value":…, "ratio":…}
// Thread-compatible.
#ifndef TOWERPS_BENCH_BENCH_UTIL_H_
#define TOWERPS_BENCH_BENCH_UTIL_H_

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
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

// Runs `fn` `repeats` times and returns the median wall time in seconds.
template <typename Fn>
double MedianSeconds(int repeats, Fn&& fn) {
  std::vector<double> times;
  for (int i = 0; i < repeats; ++i) {
    auto start = std::chrono::steady_clock::now();
    fn();
    times.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
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
