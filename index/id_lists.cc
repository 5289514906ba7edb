#include "index/id_lists.h"

#include "absl/strings/str_cat.h"

namespace towerps::index {

absl::Status ValidateIdLists(absl::string_view what, int64_t rows, int64_t num_items,
                             absl::Span<const int64_t> offsets,
                             absl::Span<const int32_t> ids) {
  if (rows < 0) return absl::InvalidArgumentError(absl::StrCat(what, ": negative row count"));
  if (static_cast<int64_t>(offsets.size()) != rows + 1) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": offsets has ", offsets.size(),
                                                   " entries, want rows + 1 = ", rows + 1));
  }
  if (offsets[0] != 0) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": offsets[0] = ", offsets[0],
                                                   ", want 0"));
  }
  for (int64_t r = 0; r < rows; ++r) {
    if (offsets[r + 1] < offsets[r]) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": offsets decrease at row ", r));
    }
  }
  if (offsets[rows] != static_cast<int64_t>(ids.size())) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": offsets end at ", offsets[rows],
                                                   " but there are ", ids.size(), " ids"));
  }
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t e = offsets[r]; e < offsets[r + 1]; ++e) {
      if (ids[e] < 0 || ids[e] >= num_items) {
        return absl::InvalidArgumentError(absl::StrCat(what, ": row ", r, " names item ",
                                                       ids[e], ", outside [0, ", num_items,
                                                       ")"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace towerps::index
