// bench/run.sh common: the shared plumbing's hot paths.
//   checksum: CRC-32C throughput beside memcpy of the same bytes (the memory bound).
//   metrics:  Histogram::Record beside a bare relaxed atomic increment.
#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "common/checksum.h"
#include "common/metrics.h"

namespace towerps::bench {
namespace {

void ChecksumFigures(bool quick) {
  const size_t bytes = quick ? (16u << 20) : (256u << 20);
  std::string data(bytes, 'x');
  for (size_t i = 0; i < bytes; i += 4096) data[i] = static_cast<char>(i);
  std::string copy(bytes, '\0');
  uint32_t crc = 0;
  double crc_s = MedianSeconds(5, [&] { crc = Crc32c(data); });
  DoNotOptimize(crc);
  double copy_s = MedianSeconds(5, [&] { std::memcpy(copy.data(), data.data(), bytes); });
  DoNotOptimize(copy[bytes / 2]);
  const double gb = static_cast<double>(bytes) / 1e9;
  PrintFigure({"common", "crc32c_throughput", gb / crc_s, "GB/s", "memcpy", gb / copy_s});
}

void HistogramFigures(bool quick) {
  const int64_t n = quick ? 2'000'000 : 20'000'000;
  Histogram histogram;
  std::atomic<int64_t> counter{0};
  double record_s = MedianSeconds(3, [&] {
    for (int64_t i = 0; i < n; ++i) histogram.Record(static_cast<double>(i & 1023));
  });
  double atomic_s = MedianSeconds(3, [&] {
    for (int64_t i = 0; i < n; ++i) counter.fetch_add(i & 1, std::memory_order_relaxed);
  });
  DoNotOptimize(counter.load());
  PrintFigure({"common", "histogram_record_rate", n / record_s / 1e6, "M records/s",
               "atomic_increment", n / atomic_s / 1e6});
}

}  // namespace
}  // namespace towerps::bench

int main(int argc, char** argv) {
  bool quick = towerps::bench::QuickMode(argc, argv);
  towerps::bench::ChecksumFigures(quick);
  towerps::bench::HistogramFigures(quick);
  return 0;
}
