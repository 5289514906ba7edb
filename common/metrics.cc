#include "common/metrics.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/file_util.h"
#include "common/process_metrics.h"
#include "common/status.h"
#include "glog/logging.h"

namespace towerps {
namespace {

void AtomicMin(std::atomic<double>* target, double v) {
  double cur = target->load(std::memory_order_relaxed);
  while (v < cur && !target->compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
  }
}

void AtomicMax(std::atomic<double>* target, double v) {
  double cur = target->load(std::memory_order_relaxed);
  while (v > cur && !target->compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
  }
}

template <typename T>
T* GetOrCreate(std::map<std::string, std::unique_ptr<T>, std::less<>>* map,
               absl::string_view name) {
  auto it = map->find(name);
  if (it != map->end()) return it->second.get();
  auto [inserted, ok] = map->emplace(std::string(name), std::make_unique<T>());
  return inserted->second.get();
}

}  // namespace

int Histogram::BucketFor(double value) {
  if (!(value > std::ldexp(1.0, kMinExponent))) return 0;
  int exponent;
  double mantissa = std::frexp(value, &exponent);  // value = mantissa * 2^exponent, [0.5,1)
  exponent -= 1;                                   // value = (2*mantissa) * 2^exponent
  if (exponent >= kMaxExponent) return kNumBuckets - 1;
  int sub = static_cast<int>((2.0 * mantissa - 1.0) * kSubBuckets);
  int bucket = 1 + (exponent - kMinExponent) * kSubBuckets + sub;
  // A value on a lower edge belongs to the bucket below: buckets are (low, high].
  if (value == std::ldexp(1.0 + static_cast<double>(sub) / kSubBuckets, exponent)) --bucket;
  return bucket >= kNumBuckets ? kNumBuckets - 1 : bucket;
}

double Histogram::BucketUpperBound(int bucket) {
  if (bucket >= kNumBuckets - 1) return std::numeric_limits<double>::infinity();
  if (bucket == 0) return std::ldexp(1.0, kMinExponent);
  int index = bucket - 1;
  return std::ldexp(1.0 + static_cast<double>(index % kSubBuckets + 1) / kSubBuckets,
                    index / kSubBuckets + kMinExponent);
}

double Histogram::BucketMidpoint(int bucket) {
  if (bucket == 0) return 0.0;
  int index = bucket - 1;
  int exponent = index / kSubBuckets + kMinExponent;
  int sub = index % kSubBuckets;
  double low = std::ldexp(1.0 + static_cast<double>(sub) / kSubBuckets, exponent);
  double high = std::ldexp(1.0 + static_cast<double>(sub + 1) / kSubBuckets, exponent);
  return 0.5 * (low + high);
}

void Histogram::Record(double value) {
  if (!std::isfinite(value) || value < 0) value = 0;
  buckets_[BucketFor(value)].fetch_add(1, std::memory_order_relaxed);
  int64_t previous = count_.fetch_add(1, std::memory_order_relaxed);
  double sum = sum_.load(std::memory_order_relaxed);
  while (!sum_.compare_exchange_weak(sum, sum + value, std::memory_order_relaxed)) {
  }
  if (previous == 0) {
    min_.store(value, std::memory_order_relaxed);
    max_.store(value, std::memory_order_relaxed);
  }
  AtomicMin(&min_, value);
  AtomicMax(&max_, value);
}

Histogram::Snapshot Histogram::TakeSnapshot(bool reset) {
  std::array<int64_t, kNumBuckets> counts;
  int64_t total = 0;
  Snapshot s;
  {
    absl::MutexLock lock(&totals_mu_);
    for (int i = 0; i < kNumBuckets; ++i) {
      counts[i] = reset ? buckets_[i].exchange(0, std::memory_order_relaxed)
                        : buckets_[i].load(std::memory_order_relaxed);
      if (reset) retired_[i] += counts[i];
      total += counts[i];
    }
    s.sum = reset ? sum_.exchange(0.0) : sum_.load();
    if (reset) retired_sum_ += s.sum;
  }
  s.count = total;
  s.min = min_.load();
  s.max = max_.load();
  if (reset) count_.store(0);
  if (total == 0) return s;
  auto quantile = [&](double q) {
    int64_t rank = static_cast<int64_t>(std::ceil(q * static_cast<double>(total)));
    if (rank < 1) rank = 1;
    int64_t seen = 0;
    for (int i = 0; i < kNumBuckets; ++i) {
      seen += counts[i];
      if (seen >= rank) return std::min(std::max(BucketMidpoint(i), s.min), s.max);
    }
    return s.max;
  };
  s.p50 = quantile(0.50);
  s.p99 = quantile(0.99);
  return s;
}

Histogram::Totals Histogram::TakeTotals() {
  Totals t;
  absl::MutexLock lock(&totals_mu_);
  for (int i = 0; i < kNumBuckets; ++i) {
    t.buckets[i] = retired_[i] + buckets_[i].load(std::memory_order_relaxed);
    t.count += t.buckets[i];
  }
  t.sum = retired_sum_ + sum_.load();
  return t;
}

Counter* MetricsRegistry::GetCounter(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  CHECK(!gauges_.contains(name) && !histograms_.contains(name)) << name;
  return GetOrCreate(&counters_, name);
}

Gauge* MetricsRegistry::GetGauge(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  CHECK(!counters_.contains(name) && !histograms_.contains(name)) << name;
  return GetOrCreate(&gauges_, name);
}

Histogram* MetricsRegistry::GetHistogram(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  CHECK(!counters_.contains(name) && !gauges_.contains(name)) << name;
  return GetOrCreate(&histograms_, name);
}

void MetricsRegistry::AppendTo(JsonObject* out, bool reset_histograms) {
  absl::MutexLock lock(&mu_);
  for (const auto& [name, counter] : counters_) out->Add(name, counter->value());
  for (const auto& [name, gauge] : gauges_) out->Add(name, gauge->value());
  for (const auto& [name, histogram] : histograms_) {
    Histogram::Snapshot s = histogram->TakeSnapshot(reset_histograms);
    out->Add(absl::StrCat(name, "_count"), s.count);
    out->Add(absl::StrCat(name, "_p50"), s.p50);
    out->Add(absl::StrCat(name, "_p99"), s.p99);
    out->Add(absl::StrCat(name, "_max"), s.max);
  }
}

void MetricsRegistry::ForEach(
    const std::function<void(const std::string&, const Counter&)>& counter,
    const std::function<void(const std::string&, const Gauge&)>& gauge,
    const std::function<void(const std::string&, Histogram*)>& histogram) {
  absl::MutexLock lock(&mu_);
  for (const auto& [name, c] : counters_) counter(name, *c);
  for (const auto& [name, g] : gauges_) gauge(name, *g);
  for (const auto& [name, h] : histograms_) histogram(name, h.get());
}

absl::Status MetricsWriterOptions::Validate() const {
  if (path.empty()) return absl::InvalidArgumentError("metrics path is empty");
  if (interval_ms <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("metrics interval_ms must be > 0, got ",
                                                   interval_ms));
  }
  if (role.empty()) return absl::InvalidArgumentError("metrics role is empty");
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<MetricsWriter>> MetricsWriter::Create(
    const MetricsWriterOptions& options, MetricsRegistry* registry, const Clock* clock) {
  TOWERPS_RETURN_IF_ERROR(options.Validate());
  int fd = ::open(options.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open ", options.path));
  return std::unique_ptr<MetricsWriter>(new MetricsWriter(options, registry, clock, fd));
}

MetricsWriter::MetricsWriter(const MetricsWriterOptions& options, MetricsRegistry* registry,
                             const Clock* clock, int fd)
    : options_(options), registry_(registry), clock_(clock), fd_(fd) {}

MetricsWriter::~MetricsWriter() {
  Stop();
  ::close(fd_);
}

void MetricsWriter::Start() {
  if (started_.exchange(true)) return;
  thread_ = std::thread([this] { Run(); });
}

void MetricsWriter::Stop() {
  if (stopped_.exchange(true)) return;
  stop_.Notify();
  if (thread_.joinable()) thread_.join();
  absl::Status status = WriteNow();
  if (!status.ok()) LOG(WARNING) << "final metrics line: " << status;
}

void MetricsWriter::Run() {
  pthread_setname_np(pthread_self(), "metrics-writer");
  while (!stop_.WaitForNotificationWithTimeout(absl::Milliseconds(options_.interval_ms))) {
    absl::Status status = WriteNow();
    if (!status.ok()) {
      LOG_EVERY_N(WARNING, 10) << "metrics line: " << status;
    }
  }
}

absl::Status MetricsWriter::WriteNow() {
  UpdateProcessMetrics(registry_);
  absl::MutexLock lock(&write_mu_);
  JsonObject line;
  line.Add("ts_ms", clock_->WallMillis()).Add("role", options_.role).Add("rank", options_.rank);
  registry_->AppendTo(&line, /*reset_histograms=*/true);
  std::string text = line.ToString();
  text.push_back('\n');
  return AppendOnce(fd_, text, options_.path);
}

}  // namespace towerps
