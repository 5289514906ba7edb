#include "data/issue_log.h"

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace towerps::data {

std::string Excerpt(absl::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  size_t cut = max_bytes;
  // Back off over UTF-8 continuation bytes (10xxxxxx) so the cut lands on a sequence
  // start; at most 3, the longest tail of a valid sequence.
  for (int i = 0; i < 3 && cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80;
       ++i) {
    --cut;
  }
  return absl::StrCat(text.substr(0, cut), "... (", text.size(), " bytes)");
}

std::string LineIssue::ToString() const {
  std::string out = absl::StrCat(file, ":", line, ": ", reason);
  if (!detail.empty()) absl::StrAppend(&out, " (", detail, ")");
  return out;
}

IssueLog::IssueLog(bool strict, size_t max_kept, size_t max_logged)
    : strict_(strict), max_kept_(max_kept), max_logged_(max_logged) {}

absl::Status IssueLog::Report(absl::string_view file, int64_t line, absl::string_view reason,
                              absl::string_view detail) {
  LineIssue issue{std::string(file), line, std::string(reason), Excerpt(detail)};
  ++total_;
  ++counts_[issue.reason];
  if (strict_) return absl::InvalidArgumentError(issue.ToString());
  if (static_cast<size_t>(total_) <= max_logged_) {
    LOG(WARNING) << "skipped malformed line " << issue.ToString();
  }
  if (issues_.size() < max_kept_) issues_.push_back(std::move(issue));
  return absl::OkStatus();
}

}  // namespace towerps::data
