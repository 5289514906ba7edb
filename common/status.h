// Status helpers shared by every component: propagation macros and errno mapping.
//
// Errors are absl::Status / absl::StatusOr everywhere a path touches the network,
// files, flags or user data (STYLE.md, "Errors"). Codes say what a caller may do:
// Unavailable / DeadlineExceeded may be retried (idempotent requests only);
// InvalidArgument / FailedPrecondition never; DataLoss means corrupt bytes.
#ifndef TOWERPS_COMMON_STATUS_H_
#define TOWERPS_COMMON_STATUS_H_

#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define TOWERPS_RETURN_IF_ERROR(expr)                \
  do {                                               \
    ::absl::Status towerps_status_ = (expr);         \
    if (!towerps_status_.ok()) return towerps_status_; \
  } while (0)

#define TOWERPS_STATUS_CONCAT_INNER_(a, b) a##b
#define TOWERPS_STATUS_CONCAT_(a, b) TOWERPS_STATUS_CONCAT_INNER_(a, b)

// `TOWERPS_ASSIGN_OR_RETURN(auto x, Foo());` assigns the value of an
// absl::StatusOr or returns its error from the enclosing function.
#define TOWERPS_ASSIGN_OR_RETURN(lhs, expr) \
  TOWERPS_ASSIGN_OR_RETURN_IMPL_(TOWERPS_STATUS_CONCAT_(towerps_or_, __LINE__), lhs, expr)
#define TOWERPS_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return std::move(tmp).status();       \
  lhs = std::move(tmp).value()

namespace towerps {

// Maps an errno value to a Status whose message is "<context>: <strerror>".
// ENOENT -> NotFound, EACCES/EPERM -> PermissionDenied, ENOSPC -> ResourceExhausted,
// EINTR/EAGAIN -> Unavailable, everything else -> Internal.
absl::Status ErrnoToStatus(int errno_value, absl::string_view context);

// Returns `status` with "<context>: " put before its message (same code).
absl::Status Annotate(const absl::Status& status, absl::string_view context);

}  // namespace towerps

#endif  // TOWERPS_COMMON_STATUS_H_
