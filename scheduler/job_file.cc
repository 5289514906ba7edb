#include "scheduler/job_file.h"

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/file_util.h"
#include "common/status.h"

namespace towerps::scheduler {
namespace {

bool KnownState(const std::string& state) {
  return state == "running" || state == "done" || state == "failed";
}

bool OneLine(const std::string& s) {
  return !s.empty() && s.find_first_of("\n\r ") == std::string::npos;
}

}  // namespace

absl::StatusOr<JobFile> ReadJobFile(const std::string& path) {
  TOWERPS_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  if (text.size() > 4096) return absl::DataLossError(absl::StrCat(path, " is too long"));
  JobFile job;
  bool has_job = false, has_endpoint = false, has_state = false;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<std::string> parts = absl::StrSplit(line, absl::MaxSplits(' ', 1));
    const auto bad = [&] {
      return absl::DataLossError(absl::StrCat(path, ": malformed line '", line, "'"));
    };
    if (parts.size() != 2) return bad();
    if (parts[0] == "job") {
      if (!absl::SimpleHexAtoi(parts[1], &job.job_id) || job.job_id == 0) return bad();
      has_job = true;
    } else if (parts[0] == "endpoint") {
      if (!OneLine(parts[1]) || !absl::StartsWith(parts[1], "tcp://")) return bad();
      job.endpoint = parts[1];
      has_endpoint = true;
    } else if (parts[0] == "state") {
      if (!KnownState(parts[1])) return bad();
      job.state = parts[1];
      has_state = true;
    } else if (parts[0] == "epoch") {
      if (!absl::SimpleAtoi(parts[1], &job.epoch) || job.epoch == 0) return bad();
    } else {
      return bad();
    }
  }
  if (!has_job || !has_endpoint || !has_state) {
    return absl::DataLossError(absl::StrCat(path, " lacks its job, endpoint or state"));
  }
  return job;
}

absl::Status WriteJobFile(const std::string& path, const JobFile& job) {
  if (!KnownState(job.state)) {
    return absl::InvalidArgumentError(absl::StrCat("unknown job state '", job.state, "'"));
  }
  if (!OneLine(job.endpoint)) {
    return absl::InvalidArgumentError(absl::StrCat("bad endpoint '", job.endpoint, "'"));
  }
  return WriteFileAtomically(path, absl::StrFormat("job %016x\nendpoint %s\nstate %s\nepoch %d\n",
                                                   job.job_id, job.endpoint, job.state, job.epoch));
}

}  // namespace towerps::scheduler
