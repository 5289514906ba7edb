// Metrics: a registry of named Counters, Gauges and Histograms, made in main() and
// passed to every component, and a writer thread that appends one JSON object per
// interval to <run_dir>/metrics.jsonl (schema: docs/metrics.md).
//
// Names follow towerps_<component>_<what>_<unit>. Recording is lock-free (atomics);
// registration takes a mutex and returns a pointer that stays valid for the
// registry's lifetime. All classes here are thread-safe.
#ifndef TOWERPS_COMMON_METRICS_H_
#define TOWERPS_COMMON_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include "absl/strings/string_view.h"
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "common/json.h"

namespace towerps {

// A monotonically increasing count (rows admitted, requests served).
class Counter {
 public:
  void Increment(int64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

// A value that goes up and down (loss, learning rate, rows in a table).
class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// A distribution of non-negative values (latencies in microseconds, batch sizes),
// kept in log-linear buckets: 16 per power of two, so a quantile is within ~3% of
// the true value. A bucket holds the values in (lower edge, upper edge], so every
// power of two is an exact upper edge (Prometheus `le` bounds: common/prometheus_text.h).
// Values <= 2^-20 share the first bucket; values above 2^44 the last.
class Histogram {
 public:
  static constexpr int kSubBuckets = 16;
  static constexpr int kMinExponent = -20;
  static constexpr int kMaxExponent = 44;
  static constexpr int kNumBuckets = (kMaxExponent - kMinExponent) * kSubBuckets + 1;

  struct Snapshot {
    int64_t count = 0;
    double sum = 0;
    double min = 0;
    double max = 0;
    double p50 = 0;
    double p99 = 0;
  };

  // Counts since construction, never reset (what a Prometheus histogram exports).
  struct Totals {
    std::array<int64_t, kNumBuckets> buckets{};  // per bucket, not cumulative
    int64_t count = 0;                           // sum of buckets
    double sum = 0;
  };

  void Record(double value);
  // Summary since construction or the last reset; `reset` clears the buckets
  // (records racing with a reset land on either side of it).
  Snapshot TakeSnapshot(bool reset);
  // Totals since construction: a reset by TakeSnapshot moves what it cleared into
  // them, so they never decrease between two calls.
  Totals TakeTotals();

  // Upper edge of `bucket` (inclusive); +infinity for the last one.
  static double BucketUpperBound(int bucket);

 private:
  static int BucketFor(double value);
  static double BucketMidpoint(int bucket);

  std::array<std::atomic<int64_t>, kNumBuckets> buckets_{};
  std::atomic<int64_t> count_{0};
  std::atomic<double> sum_{0.0};
  std::atomic<double> min_{0.0};
  std::atomic<double> max_{0.0};
  // What resets cleared; the mutex makes a reset and TakeTotals atomic with respect
  // to each other (Record never takes it).
  absl::Mutex totals_mu_;
  std::array<int64_t, kNumBuckets> retired_ ABSL_GUARDED_BY(totals_mu_){};
  double retired_sum_ ABSL_GUARDED_BY(totals_mu_) = 0;
};

class MetricsRegistry {
 public:
  // Returns the metric of that name, creating it on first use. The pointer is
  // owned by the registry. A name used for one kind must not be reused for another
  // (CHECK-fails: a programming error).
  Counter* GetCounter(absl::string_view name);
  Gauge* GetGauge(absl::string_view name);
  Histogram* GetHistogram(absl::string_view name);

  // Adds every metric to `out`: counters and gauges by name; histograms as
  // <name>_count, <name>_p50, <name>_p99, <name>_max. `reset_histograms` makes the
  // next call report only what was recorded after this one.
  void AppendTo(JsonObject* out, bool reset_histograms);

  // Calls the visitors once per metric, in name order within each kind (counters,
  // then gauges, then histograms), under the registry's mutex: visitors must not
  // call back into the registry.
  void ForEach(const std::function<void(const std::string&, const Counter&)>& counter,
               const std::function<void(const std::string&, const Gauge&)>& gauge,
               const std::function<void(const std::string&, Histogram*)>& histogram);

 private:
  absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<Counter>, std::less<>> counters_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::unique_ptr<Gauge>, std::less<>> gauges_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::unique_ptr<Histogram>, std::less<>> histograms_
      ABSL_GUARDED_BY(mu_);
};

struct MetricsWriterOptions {
  // File the JSON lines are appended to, e.g. <run_dir>/metrics.jsonl. Required.
  std::string path;
  // Process role written in every line: scheduler, ps, worker, train, ...
  std::string role = "train";
  // Rank of the process within its role (0 for single processes).
  int rank = 0;
  // Interval between lines, milliseconds; > 0.
  int64_t interval_ms = 10000;

  absl::Status Validate() const;
};

// Appends one JSON object per interval, and one more on Stop(). Owns thread
// "metrics-writer", started by Start() and joined by Stop() (idempotent).
class MetricsWriter {
 public:
  static absl::StatusOr<std::unique_ptr<MetricsWriter>> Create(
      const MetricsWriterOptions& options, MetricsRegistry* registry, const Clock* clock);
  ~MetricsWriter();

  void Start();
  void Stop();
  // Writes one line now (from the calling thread). Errors: file errors.
  absl::Status WriteNow();

 private:
  MetricsWriter(const MetricsWriterOptions& options, MetricsRegistry* registry,
                const Clock* clock, int fd);
  void Run();

  // Constant after construction.
  const MetricsWriterOptions options_;
  MetricsRegistry* const registry_;
  const Clock* const clock_;
  const int fd_;

  absl::Mutex write_mu_;  // serialises WriteNow between the thread and callers
  absl::Notification stop_;
  std::thread thread_;
  std::atomic<bool> started_{false};
  std::atomic<bool> stopped_{false};
};

}  // namespace towerps

#endif  // TOWERPS_COMMON_METRICS_H_
