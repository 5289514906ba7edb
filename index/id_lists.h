// Per-query lists of item rows in CSR form (offsets + ids), the shape shared by
// exclusion lists (a user's training positives) and relevance lists (held-out
// positives). Thread-safe (pure functions).
#ifndef TOWERPS_INDEX_ID_LISTS_H_
#define TOWERPS_INDEX_ID_LISTS_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace towerps::index {

// Checks that `offsets` (rows + 1) and `ids` describe `rows` lists of item rows
// in [0, num_items): offsets[0] == 0, non-decreasing, offsets[rows] == ids.size().
// `what` names the lists in the error ("exclusions", "relevant").
// Returns InvalidArgument naming the first offending row / entry.
absl::Status ValidateIdLists(absl::string_view what, int64_t rows, int64_t num_items,
                             absl::Span<const int64_t> offsets,
                             absl::Span<const int32_t> ids);

}  // namespace towerps::index

#endif  // TOWERPS_INDEX_ID_LISTS_H_
