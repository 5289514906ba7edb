#include "ps/local_params.h"

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace towerps::ps {

absl::Status LocalParams::Pull(absl::Span<const SparseSlice> slices, int64_t step, bool create) {
  for (const SparseSlice& s : slices) {
    if (s.table >= server_->options().tables.size()) {
      return absl::InvalidArgumentError(absl::StrCat("no table ", s.table));
    }
    sparse_emb::EmbeddingTable* table = server_->table(static_cast<int>(s.table));
    if (create) {
      table->Pull(s.keys, step, s.out);
    } else {
      table->Lookup(s.keys, s.out);
    }
  }
  return absl::OkStatus();
}

absl::Status LocalParams::Push(absl::Span<const SparseSlice> slices, int64_t step) {
  for (const SparseSlice& s : slices) {
    if (s.table >= server_->options().tables.size()) {
      return absl::InvalidArgumentError(absl::StrCat("no table ", s.table));
    }
    server_->table(static_cast<int>(s.table))->Push(s.keys, s.grads, s.learning_rate, step);
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> LocalParams::PullDense(absl::Span<float> params) {
  if (params.size() != server_->dense()->size()) {
    return absl::InvalidArgumentError("dense pull size differs from the model's");
  }
  return server_->dense()->Read(params.data());
}

absl::Status LocalParams::PushDense(absl::Span<const float> grads, float learning_rate,
                                    int64_t /*step*/, absl::Span<float> refreshed) {
  TOWERPS_RETURN_IF_ERROR(server_->dense()->Apply(grads, learning_rate));
  if (!refreshed.empty()) TOWERPS_RETURN_IF_ERROR(PullDense(refreshed).status());
  return absl::OkStatus();
}

absl::Status LocalParams::AssignDense(absl::Span<const float> values) {
  absl::Status status = server_->dense()->Assign(values);
  return absl::IsFailedPrecondition(status) ? absl::OkStatus() : status;
}

}  // namespace towerps::ps
