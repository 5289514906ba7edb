#include "ps/local_params.h"

#include "absl/strings/str_cat.h"
#include "common/numeric_bounds.h"
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

absl::Status LocalParams::Update(const StepUpdate& update, int64_t step) {
  // Checked whole before anything is applied, as the server checks a push: a diverged
  // step is refused and changes nothing.
  for (const SparseSlice& s : update.sparse) {
    if (s.table >= server_->options().tables.size()) {
      return absl::InvalidArgumentError(absl::StrCat("no table ", s.table));
    }
    TOWERPS_RETURN_IF_ERROR(CheckLearningRate(s.learning_rate, "table", s.table));
    TOWERPS_RETURN_IF_ERROR(CheckGradients(
        absl::MakeConstSpan(s.grads, s.keys.size() * server_->table(s.table)->dim()), "table",
        s.table));
  }
  if (!update.dense_grads.empty()) {
    TOWERPS_RETURN_IF_ERROR(CheckLearningRate(update.dense_learning_rate, "dense"));
    TOWERPS_RETURN_IF_ERROR(CheckGradients(update.dense_grads, "dense"));
  }
  for (const SparseSlice& s : update.sparse) {
    server_->table(static_cast<int>(s.table))->Push(s.keys, s.grads, s.learning_rate, step);
  }
  if (update.dense_grads.empty()) return absl::OkStatus();
  TOWERPS_RETURN_IF_ERROR(server_->dense()->Apply(update.dense_grads, update.dense_learning_rate));
  if (!update.refreshed.empty()) TOWERPS_RETURN_IF_ERROR(PullDense(update.refreshed).status());
  return absl::OkStatus();
}

absl::StatusOr<int64_t> LocalParams::PullDense(absl::Span<float> params) {
  if (params.size() != server_->dense()->size()) {
    return absl::InvalidArgumentError("dense pull size differs from the model's");
  }
  return server_->dense()->Read(params.data());
}

absl::Status LocalParams::AssignDense(absl::Span<const float> values) {
  absl::Status status = server_->dense()->Assign(values);
  return absl::IsFailedPrecondition(status) ? absl::OkStatus() : status;
}

}  // namespace towerps::ps
