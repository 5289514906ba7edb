// Where a trainer reads and updates parameters: the same interface for the
// parameter servers over the network (PsClient) and for an in-process server
// (LocalParams, embedded mode), so one training step serves both modes and the
// cluster reproduces embedded mode's numbers.
#ifndef TOWERPS_PS_PARAM_SOURCE_H_
#define TOWERPS_PS_PARAM_SOURCE_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace towerps::ps {

// One table's part of a batched pull or push.
struct SparseSlice {
  uint32_t table = 0;
  int dim = 0;
  // keys: n unique keys.
  absl::Span<const uint64_t> keys;
  // Pull: out: n * dim, filled in key order. Push: unused.
  float* out = nullptr;
  // Push: grads: n * dim, and the learning rate for this table. Pull: unused.
  const float* grads = nullptr;
  float learning_rate = 0;
};

// One step's updates.
struct StepUpdate {
  // Every slice's gradients with its learning rate (slice.grads, slice.learning_rate).
  absl::Span<const SparseSlice> sparse;
  // The whole dense gradient, one optimizer step at dense_learning_rate; empty: none.
  absl::Span<const float> dense_grads;
  float dense_learning_rate = 0;
  // With a dense gradient: a non-empty `refreshed` (the whole array) receives the
  // parameters as they are after this update, in the same round trip (updates of
  // other workers that land in between may or may not be in it, as with a pull right
  // after the push).
  absl::Span<float> refreshed;
};

// Thread-compatibility is the implementation's (PsClient: one thread; LocalParams:
// thread-safe).
class ParamSource {
 public:
  virtual ~ParamSource() = default;

  // Reads every slice's rows. create=false reads zeros for missing rows (export,
  // evaluation) and changes nothing.
  virtual absl::Status Pull(absl::Span<const SparseSlice> slices, int64_t step, bool create) = 0;
  // Applies one step's updates (sparse rows and, optionally, the dense gradient) as
  // one request per server.
  virtual absl::Status Update(const StepUpdate& update, int64_t step) = 0;
  // Reads the whole dense array; returns the number of dense updates applied (the
  // smallest over servers).
  virtual absl::StatusOr<int64_t> PullDense(absl::Span<float> params) = 0;

  // Update() with sparse rows only.
  absl::Status Push(absl::Span<const SparseSlice> slices, int64_t step) {
    StepUpdate update;
    update.sparse = slices;
    return Update(update, step);
  }
  // Update() with the dense gradient only.
  absl::Status PushDense(absl::Span<const float> grads, float learning_rate, int64_t step,
                         absl::Span<float> refreshed) {
    StepUpdate update;
    update.dense_grads = grads;
    update.dense_learning_rate = learning_rate;
    update.refreshed = refreshed;
    return Update(update, step);
  }
  // Sets the initial dense values unless they were set or updated already.
  virtual absl::Status AssignDense(absl::Span<const float> values) = 0;
  // Waits until every update sent so far is applied; the first failure among them.
  // (A source may return from Push before the update is applied.)
  virtual absl::Status Flush() { return absl::OkStatus(); }
};

}  // namespace towerps::ps

#endif  // TOWERPS_PS_PARAM_SOURCE_H_
