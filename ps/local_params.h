// ParamSource over an in-process ParameterServer: embedded mode's parameters. The
// tables and the dense block apply the same optimizers a remote server would, so
// embedded training and the cluster compute the same numbers. Thread-safe (the
// server's tables and dense block are).
#ifndef TOWERPS_PS_LOCAL_PARAMS_H_
#define TOWERPS_PS_LOCAL_PARAMS_H_

#include "ps/param_source.h"
#include "ps/server.h"

namespace towerps::ps {

class LocalParams final : public ParamSource {
 public:
  // `server` is borrowed; it must hold the whole dense array (rank 0 of 1).
  explicit LocalParams(ParameterServer* server) : server_(server) {}

  absl::Status Pull(absl::Span<const SparseSlice> slices, int64_t step, bool create) override;
  absl::Status Update(const StepUpdate& update, int64_t step) override;
  absl::StatusOr<int64_t> PullDense(absl::Span<float> params) override;
  absl::Status AssignDense(absl::Span<const float> values) override;

 private:
  ParameterServer* const server_;
};

}  // namespace towerps::ps

#endif  // TOWERPS_PS_LOCAL_PARAMS_H_
