// ParamStore: every dense parameter of a model in one flat, contiguous buffer,
// with a parallel flat gradient buffer and a name -> (offset, shape) table.
//
// An optimizer or a parameter server treats "all dense parameters" as one float
// array (values()) and "all dense gradients" as another (grads()) with the same
// layout; layout() describes it so that the distributed mode can ship both as
// blobs and check the peer agrees on the layout.
//
// Layers register their parameters at construction (Add) and look them up
// through a ParamRef on every call, so the buffer may grow while a model is
// being built; it must not grow after training starts (nothing enforces this
// beyond the documented contract).
//
// Thread-compatible: concurrent const access is safe; Forward/Backward of
// layers that share a store write its gradient buffer and need external
// synchronisation (or separate stores per replica).
#ifndef TOWERPS_MODELS_PARAM_STORE_H_
#define TOWERPS_MODELS_PARAM_STORE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "models/tensor.h"

namespace towerps::models {

// Where one parameter lives in the flat buffer: rows x cols, row-major, at offset.
struct ParamRef {
  size_t offset = 0;
  int rows = 0;
  int cols = 0;
  size_t size() const { return static_cast<size_t>(rows) * cols; }
};

// One row of the layout table.
struct ParamInfo {
  std::string name;
  ParamRef ref;
};

template <typename T>
class ParamStore {
 public:
  ParamStore() = default;
  ParamStore(const ParamStore&) = delete;
  ParamStore& operator=(const ParamStore&) = delete;

  // Registers a rows x cols parameter, zero-valued with zero gradient, after
  // all earlier ones. `name` must be unique in the store (CHECK: names come
  // from code, not from users).
  ParamRef Add(absl::string_view name, int rows, int cols);

  // Views of one parameter and its gradient. Valid until the next Add().
  MatRef<T> Value(const ParamRef& ref) {
    return MatRef<T>(values_.data() + ref.offset, ref.rows, ref.cols);
  }
  ConstMatRef<T> Value(const ParamRef& ref) const {
    return ConstMatRef<T>(values_.data() + ref.offset, ref.rows, ref.cols);
  }
  MatRef<T> Grad(const ParamRef& ref) {
    return MatRef<T>(grads_.data() + ref.offset, ref.rows, ref.cols);
  }
  ConstMatRef<T> Grad(const ParamRef& ref) const {
    return ConstMatRef<T>(grads_.data() + ref.offset, ref.rows, ref.cols);
  }

  // The whole flat buffers: size() values each, in layout() order.
  std::span<T> values() { return values_; }
  std::span<const T> values() const { return values_; }
  std::span<T> grads() { return grads_; }
  std::span<const T> grads() const { return grads_; }
  size_t size() const { return values_.size(); }

  // Sets every gradient to zero (Backward calls accumulate).
  void ZeroGrads();

  // The name -> (offset, shape) table, in buffer order.
  const std::vector<ParamInfo>& layout() const { return layout_; }
  // The parameter called `name`, or nullopt.
  std::optional<ParamRef> Find(absl::string_view name) const;

  // Copies `values` (size()) into the value buffer, e.g. from a checkpoint or
  // a parameter server. InvalidArgument when the size differs.
  absl::Status SetValues(std::span<const T> values);

  // Fills `ref` with values uniform in [-limit, limit], deterministic for `seed`
  // on every platform (its own SplitMix64, no std:: distributions).
  void InitUniform(const ParamRef& ref, double limit, uint64_t seed);
  // Glorot/Xavier uniform for a fan_in x fan_out weight: limit sqrt(6/(in+out)).
  void InitGlorot(const ParamRef& ref, uint64_t seed);

 private:
  std::vector<T> values_;
  std::vector<T> grads_;
  std::vector<ParamInfo> layout_;
};

extern template class ParamStore<float>;
extern template class ParamStore<double>;

// A seed for a named sub-part, derived from a model seed (stable across runs).
uint64_t DeriveSeed(uint64_t seed, absl::string_view name);

}  // namespace towerps::models

#endif  // TOWERPS_MODELS_PARAM_STORE_H_
