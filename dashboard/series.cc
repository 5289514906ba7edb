#include "dashboard/series.h"

#include <algorithm>

namespace towerps::dashboard {

void SeriesPoint::Absorb(const SeriesPoint& later) {
  if (count == 0) {
    *this = later;
    return;
  }
  t_last_ms = later.t_last_ms;
  min = std::min(min, later.min);
  max = std::max(max, later.max);
  sum += later.sum;
  count += later.count;
}

DownsampledSeries::DownsampledSeries(int capacity)
    : capacity_(std::max(2, capacity + (capacity & 1))) {
  full_.reserve(capacity_);
}

void DownsampledSeries::Add(int64_t t_ms, double v) {
  ++total_;
  last_value_ = v;
  last_t_ms_ = t_ms;
  pending_.Absorb(SeriesPoint{t_ms, t_ms, v, v, v, 1});
  if (pending_.count < stride_) return;
  full_.push_back(pending_);
  pending_ = SeriesPoint();
  if (static_cast<int>(full_.size()) < capacity_) return;
  // Full: merge pairs in place; from now on a point covers twice as many values.
  for (int i = 0; i < capacity_ / 2; ++i) {
    SeriesPoint merged = full_[2 * i];
    merged.Absorb(full_[2 * i + 1]);
    full_[i] = merged;
  }
  full_.resize(capacity_ / 2);
  stride_ *= 2;
}

std::vector<SeriesPoint> DownsampledSeries::Points() const {
  std::vector<SeriesPoint> points = full_;
  if (pending_.count > 0) points.push_back(pending_);
  return points;
}

}  // namespace towerps::dashboard
