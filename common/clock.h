// Time sources. Libraries take a Clock* so tests can control time (a FakeClock)
// the way LevelDB's tests swap the Env. Thread-safe.
#ifndef TOWERPS_COMMON_CLOCK_H_
#define TOWERPS_COMMON_CLOCK_H_

#include <atomic>
#include <chrono>
#include <cstdint>

namespace towerps {

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic time in microseconds (arbitrary origin).
  virtual int64_t NowMicros() const = 0;
  // Wall-clock time in milliseconds since the Unix epoch (for logs and metrics).
  virtual int64_t WallMillis() const = 0;
};

// The process's real clocks (steady_clock and system_clock).
class RealClock final : public Clock {
 public:
  int64_t NowMicros() const override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  int64_t WallMillis() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

// A clock that moves only when the test calls Advance.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t start_micros = 0) : now_micros_(start_micros) {}
  int64_t NowMicros() const override { return now_micros_.load(); }
  int64_t WallMillis() const override { return now_micros_.load() / 1000; }
  void AdvanceMicros(int64_t delta) { now_micros_.fetch_add(delta); }

 private:
  std::atomic<int64_t> now_micros_;
};

}  // namespace towerps

#endif  // TOWERPS_COMMON_CLOCK_H_
