#include "models/param_store.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "models/random.h"

namespace towerps::models {

template <typename T>
ParamRef ParamStore<T>::Add(absl::string_view name, int rows, int cols) {
  CHECK_GT(rows, 0) << name;
  CHECK_GT(cols, 0) << name;
  CHECK(!Find(name).has_value()) << "duplicate parameter name " << name;
  ParamRef ref{values_.size(), rows, cols};
  values_.resize(values_.size() + ref.size(), T(0));
  grads_.resize(values_.size(), T(0));
  layout_.push_back(ParamInfo{std::string(name), ref});
  return ref;
}

template <typename T>
void ParamStore<T>::ZeroGrads() {
  std::fill(grads_.begin(), grads_.end(), T(0));
}

template <typename T>
std::optional<ParamRef> ParamStore<T>::Find(absl::string_view name) const {
  for (const ParamInfo& info : layout_) {
    if (info.name == name) return info.ref;
  }
  return std::nullopt;
}

template <typename T>
absl::Status ParamStore<T>::SetValues(std::span<const T> values) {
  if (values.size() != values_.size()) {
    return absl::InvalidArgumentError(absl::StrCat("ParamStore::SetValues: got ", values.size(),
                                                   " values, the layout has ", values_.size()));
  }
  std::copy(values.begin(), values.end(), values_.begin());
  return absl::OkStatus();
}

template <typename T>
void ParamStore<T>::InitUniform(const ParamRef& ref, double limit, uint64_t seed) {
  SplitMix64 rng(seed);
  T* p = values_.data() + ref.offset;
  for (size_t i = 0; i < ref.size(); ++i) {
    p[i] = static_cast<T>((2.0 * rng.NextDouble() - 1.0) * limit);
  }
}

template <typename T>
void ParamStore<T>::InitGlorot(const ParamRef& ref, uint64_t seed) {
  InitUniform(ref, std::sqrt(6.0 / (ref.rows + ref.cols)), seed);
}

template class ParamStore<float>;
template class ParamStore<double>;

uint64_t DeriveSeed(uint64_t seed, absl::string_view name) {
  // FNV-1a over the name, mixed with the seed through SplitMix64.
  uint64_t h = 1469598103934665603ULL;
  for (char c : name) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return SplitMix64(seed ^ h).Next();
}

}  // namespace towerps::models
