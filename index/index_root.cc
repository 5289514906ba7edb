#include "index/index_root.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/status.h"

namespace towerps::index {

int64_t VersionNumberOfName(absl::string_view name) {
  if (name.size() < 3 || name.size() > 11 || name.substr(0, 2) != "v-" || name[2] == '0') {
    return -1;
  }
  int64_t n = 0;
  for (char c : name.substr(2)) {
    if (c < '0' || c > '9') return -1;
    n = n * 10 + (c - '0');
  }
  return n;
}

bool IsIndexRoot(const std::string& dir) { return PathExists(dir + "/CURRENT"); }

absl::StatusOr<std::string> ReadCurrentVersion(const std::string& root) {
  TOWERPS_ASSIGN_OR_RETURN(std::string text, ReadFileToString(root + "/CURRENT"));
  const std::string name(absl::StripAsciiWhitespace(text));
  if (VersionNumberOfName(name) < 1) {
    return absl::DataLossError(absl::StrCat(root, "/CURRENT does not name a version (v-<n>)"));
  }
  return name;
}

int64_t LatestVersionNumber(const std::string& root) {
  namespace fs = std::filesystem;
  int64_t latest = 0;
  std::error_code ec;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    latest = std::max(latest, VersionNumberOfName(it->path().filename().string()));
  }
  return latest;
}

absl::Status SetCurrentVersion(const std::string& root, const std::string& version) {
  if (VersionNumberOfName(version) < 1) {
    return absl::InvalidArgumentError(absl::StrCat("'", version, "' is not a version (v-<n>)"));
  }
  if (!PathExists(absl::StrCat(root, "/", version, "/MANIFEST"))) {
    return absl::NotFoundError(absl::StrCat(root, "/", version, " holds no MANIFEST"));
  }
  return WriteFileAtomically(root + "/CURRENT", version + "\n");
}

}  // namespace towerps::index
