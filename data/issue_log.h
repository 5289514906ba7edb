// Malformed-input accounting for the log readers: every bad line is reported with
// file:line and a reason; by default it is skipped and counted, in strict mode the
// first one stops the run. Thread-compatible.
#ifndef TOWERPS_DATA_ISSUE_LOG_H_
#define TOWERPS_DATA_ISSUE_LOG_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace towerps::data {

struct LineIssue {
  std::string file;    // base name of the input file
  int64_t line = 0;    // 1-based
  std::string reason;  // category, e.g. "wrong column count"
  std::string detail;  // e.g. "expected 4 fields, got 3"; at most kMaxIssueDetailBytes
                       // of the input plus a "... (N bytes)" suffix

  // "ratings.dat:17: wrong column count (expected 4 fields, got 3)".
  std::string ToString() const;
};

// Input echoed in an issue's detail (a bad field, a bad id) is cut to this many bytes,
// so a huge malformed line costs a bounded line in logs, summaries and errors.
inline constexpr size_t kMaxIssueDetailBytes = 200;

// `text` when it has at most max_bytes bytes; otherwise its first max_bytes bytes (fewer
// when that would split a UTF-8 sequence) followed by "... (<size> bytes)".
std::string Excerpt(absl::string_view text, size_t max_bytes = kMaxIssueDetailBytes);

class IssueLog {
 public:
  // strict: the first Report returns an error. max_kept: issues kept in full (the
  // rest are only counted). max_logged: issues also written to glog as WARNING.
  explicit IssueLog(bool strict, size_t max_kept = 10000, size_t max_logged = 20);

  // Records a malformed line; `detail` is kept as Excerpt(detail). Returns InvalidArgument("<file>:<line>: <reason> (<detail>)")
  // in strict mode, which the caller returns; OK otherwise (skip the line).
  absl::Status Report(absl::string_view file, int64_t line, absl::string_view reason,
                      absl::string_view detail = {});

  int64_t total() const { return total_; }
  // Count per reason category.
  const std::map<std::string, int64_t>& counts() const { return counts_; }
  // The first max_kept issues, in report order.
  const std::vector<LineIssue>& issues() const { return issues_; }
  bool strict() const { return strict_; }

 private:
  bool strict_;
  size_t max_kept_;
  size_t max_logged_;
  int64_t total_ = 0;
  std::map<std::string, int64_t> counts_;
  std::vector<LineIssue> issues_;
};

}  // namespace towerps::data

#endif  // TOWERPS_DATA_ISSUE_LOG_H_
