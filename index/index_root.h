// An index root: whole index versions side by side and a pointer to the served one,
// so that a new version is published without stopping `serve`:
//   <root>/v-<n>/        a whole `build-index` output (MANIFEST + shards), n >= 1
//   <root>/CURRENT       one line: the served version's dir name ("v-3"), written
//                        atomically (temporary file + rename)
//   <root>/deltas/       item deltas over the current version (index/item_delta.h)
// docs/index.md, "Fresh items and new versions". Thread-safety: pure functions
// over the file system (a reader sees the old CURRENT or the new one, never a mix).
#ifndef TOWERPS_INDEX_INDEX_ROOT_H_
#define TOWERPS_INDEX_INDEX_ROOT_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace towerps::index {

// n of a version dir name "v-<n>" (n >= 1, decimal, at most 9 digits); -1 otherwise.
int64_t VersionNumberOfName(absl::string_view name);

// True when <dir>/CURRENT exists (a root), false for a plain index dir.
bool IsIndexRoot(const std::string& dir);

// The version CURRENT names. NotFound without CURRENT; DataLoss when it does not
// name a version dir ("v-<n>", nothing else on the line).
absl::StatusOr<std::string> ReadCurrentVersion(const std::string& root);

// The largest n of the v-<n> dirs under root (0 when none, or no root dir).
int64_t LatestVersionNumber(const std::string& root);

// Points CURRENT at `version` (which must exist under root with a MANIFEST),
// atomically. Errors: InvalidArgument (name), NotFound, file errors.
absl::Status SetCurrentVersion(const std::string& root, const std::string& version);

}  // namespace towerps::index

#endif  // TOWERPS_INDEX_INDEX_ROOT_H_
