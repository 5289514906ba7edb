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

// Thread-compatibility is the implementation's (PsClient: one thread; LocalParams:
// thread-safe).
class ParamSource {
 public:
  virtual ~ParamSource() = default;

  // Reads every slice's rows. create=false reads zeros for missing rows (export,
  // evaluation) and changes nothing.
  virtual absl::Status Pull(absl::Span<const SparseSlice> slices, int64_t step, bool create) = 0;
  // Applies every slice's gradients with its learning rate.
  virtual absl::Status Push(absl::Span<const SparseSlice> slices, int64_t step) = 0;
  // Reads the whole dense array; returns the number of dense updates applied (the
  // smallest over servers).
  virtual absl::StatusOr<int64_t> PullDense(absl::Span<float> params) = 0;
  // One dense optimizer step with the whole gradient. A non-empty `refreshed` (the
  // whole array) receives the parameters as they are after this update: a push and
  // the next pull in one round trip (updates of other workers that land in between
  // may or may not be in it, as with a pull right after the push).
  virtual absl::Status PushDense(absl::Span<const float> grads, float learning_rate,
                                 int64_t step, absl::Span<float> refreshed) = 0;
  // Sets the initial dense values unless they were set or updated already.
  virtual absl::Status AssignDense(absl::Span<const float> values) = 0;
  // Waits until every update sent so far is applied; the first failure among them.
  // (A source may return from Push before the update is applied.)
  virtual absl::Status Flush() { return absl::OkStatus(); }
};

}  // namespace towerps::ps

#endif  // TOWERPS_PS_PARAM_SOURCE_H_
