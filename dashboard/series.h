// A time series kept in bounded memory: at most `capacity` points whatever the number
// of values added. When full, neighbouring points merge pairwise and each later point
// covers twice as many raw values (its stride doubles), so a series of any length ends
// with between capacity/2 and capacity points spread evenly over it. Every point keeps
// the min, max and mean of the raw values it covers: a one-sample spike survives as the
// max of its point.
//
// Thread-compatible.
#ifndef TOWERPS_DASHBOARD_SERIES_H_
#define TOWERPS_DASHBOARD_SERIES_H_

#include <cstdint>
#include <vector>

namespace towerps::dashboard {

// One point of a downsampled series: the raw values added between t_first_ms and
// t_last_ms (inclusive; in the order added).
struct SeriesPoint {
  int64_t t_first_ms = 0;
  int64_t t_last_ms = 0;
  double min = 0;
  double max = 0;
  double sum = 0;
  int64_t count = 0;  // raw values covered, >= 1

  double mean() const { return sum / static_cast<double>(count); }
  // Adds one raw value (or merges a later point) into this one.
  void Absorb(const SeriesPoint& later);
};

class DownsampledSeries {
 public:
  // capacity: points kept, rounded up to an even number >= 2.
  explicit DownsampledSeries(int capacity);

  // Adds one raw value at t_ms. `v` must be finite (the readers drop the others).
  void Add(int64_t t_ms, double v);

  // The points so far, oldest first (the newest may cover fewer than stride values).
  // At most capacity() points.
  std::vector<SeriesPoint> Points() const;

  int capacity() const { return capacity_; }
  // Raw values per full point (1 until the first merge, then a power of two).
  int64_t stride() const { return stride_; }
  // Raw values added.
  int64_t total() const { return total_; }
  // The last raw value added (valid when total() > 0).
  double last_value() const { return last_value_; }
  int64_t last_t_ms() const { return last_t_ms_; }

 private:
  int capacity_;
  int64_t stride_ = 1;
  int64_t total_ = 0;
  double last_value_ = 0;
  int64_t last_t_ms_ = 0;
  std::vector<SeriesPoint> full_;  // each covers stride_ raw values; < capacity_ of them
  SeriesPoint pending_;            // count < stride_ (0: empty)
};

}  // namespace towerps::dashboard

#endif  // TOWERPS_DASHBOARD_SERIES_H_
