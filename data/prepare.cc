#include "data/prepare.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/status.h"
#include "data/dataset_writer.h"
#include "data/positive_log.h"
#include "data/raw_dataset.h"
#include "glog/logging.h"

namespace towerps::data {
namespace {

constexpr size_t kIssuesInResult = 20;

std::string TempPrefix(const std::string& output_dir) { return output_dir + ".tmp-"; }

// Removes "<output_dir>.tmp-<pid>" directories left by runs that were killed
// (their pid is gone), so an interrupted run leaves nothing behind for long.
void RemoveStaleTempDirs(const std::string& output_dir) {
  std::filesystem::path out(output_dir);
  std::filesystem::path parent = out.parent_path().empty() ? "." : out.parent_path();
  const std::string prefix = out.filename().string() + ".tmp-";
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(parent, ec)) {
    const std::string name = entry.path().filename().string();
    int pid = 0;
    if (!absl::StartsWith(name, prefix) || !absl::SimpleAtoi(name.substr(prefix.size()), &pid)) {
      continue;
    }
    if (::kill(pid, 0) != 0 && errno == ESRCH) {
      LOG(WARNING) << "removing " << entry.path().string() << " left by an interrupted prepare";
      (void)RemoveAll(entry.path().string());
    }
  }
}

bool IsNonEmptyDir(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec) && !std::filesystem::is_empty(path, ec);
}

absl::Status RunHook(const PrepareHook& hook, absl::string_view stage) {
  return hook ? hook(stage) : absl::OkStatus();
}

absl::Status Commit(const std::string& tmp, const std::string& output_dir, bool overwrite) {
  if (!PathExists(output_dir)) return RenameDirectory(tmp, output_dir);
  if (!IsNonEmptyDir(output_dir)) {
    TOWERPS_RETURN_IF_ERROR(RemoveAll(output_dir));
    return RenameDirectory(tmp, output_dir);
  }
  if (!overwrite) {
    return absl::FailedPreconditionError(absl::StrCat(output_dir, " exists (use --overwrite)"));
  }
  // The old dataset moves aside first, so output_dir always names a whole dataset
  // except for the instant between the two renames.
  const std::string old = absl::StrCat(output_dir, ".old-", ::getpid());
  TOWERPS_RETURN_IF_ERROR(RenameDirectory(output_dir, old));
  TOWERPS_RETURN_IF_ERROR(RenameDirectory(tmp, output_dir));
  return RemoveAll(old);
}

absl::Status PrepareInto(const PrepareOptions& options, const std::string& tmp,
                         const PrepareHook& hook, const std::atomic<bool>* cancel,
                         PrepareResult* result) {
  TOWERPS_RETURN_IF_ERROR(RunHook(hook, "read"));
  RawDataset raw;
  IssueLog issues(options.strict);
  absl::Status read = ReadSource(options.source, &issues, &raw);
  result->format = raw.format;
  result->interaction_lines = raw.interaction_lines;
  result->side_lines = raw.side_lines;
  result->skipped_lines = issues.total();
  result->skipped_by_reason = issues.counts();
  for (size_t i = 0; i < issues.issues().size() && i < kIssuesInResult; ++i) {
    result->first_issues.push_back(issues.issues()[i]);
  }
  TOWERPS_RETURN_IF_ERROR(read);
  result->interactions = static_cast<int64_t>(raw.interactions.size());
  if (cancel != nullptr && cancel->load()) return absl::CancelledError("prepare interrupted");

  TOWERPS_RETURN_IF_ERROR(RunHook(hook, "filter"));
  PositiveLog log = BuildPositiveLog(options, &raw);
  result->not_positive = log.not_positive;
  result->removed_by_kcore = log.removed_by_kcore;
  result->users = log.num_users();
  result->items = log.num_items();
  if (log.positives.empty()) {
    return absl::FailedPreconditionError(
        "no positive interactions left after filtering (check --min_rating and the k-core "
        "thresholds)");
  }
  TOWERPS_RETURN_IF_ERROR(RunHook(hook, "split"));
  for (uint8_t s : log.split) ++result->examples[s];

  TOWERPS_RETURN_IF_ERROR(CreateDirectories(tmp));
  DatasetMeta meta;
  return WriteDatasetFiles(raw, log, options, tmp, hook, cancel, &meta);
}

}  // namespace

absl::Status PrepareOptions::Validate() const {
  TOWERPS_RETURN_IF_ERROR(source.Validate());
  if (output_dir.empty()) return absl::InvalidArgumentError("--output (a directory) is required");
  if (split_mode != "leave_last_out" && split_mode != "time") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown --split_mode '", split_mode, "' (leave_last_out or time)"));
  }
  if (min_user_interactions < 0 || min_item_interactions < 0) {
    return absl::InvalidArgumentError("--min_user_interactions/--min_item_interactions must be >= 0");
  }
  if (history_length < 0 || history_length > 100000) {
    return absl::InvalidArgumentError("--history_length must be in [0, 100000]");
  }
  if (num_shards < 1 || num_shards > 99999) {
    return absl::InvalidArgumentError("--num_shards must be in [1, 99999]");
  }
  if (!(cold_item_fraction >= 0 && cold_item_fraction <= 0.5)) {
    return absl::InvalidArgumentError("--cold_item_fraction must be in [0, 0.5]");
  }
  if (valid_cutoff != 0 && test_cutoff != 0 && valid_cutoff > test_cutoff) {
    return absl::InvalidArgumentError("--valid_cutoff must not be after --test_cutoff");
  }
  return absl::OkStatus();
}

std::string PrepareResult::ToString() const {
  std::string out = absl::StrCat("format: ", format, "\n");
  absl::StrAppend(&out, "lines read: ", interaction_lines, " interactions, ", side_lines,
                  " side-file\n");
  absl::StrAppend(&out, "skipped lines: ", skipped_lines, "\n");
  for (const auto& [reason, count] : skipped_by_reason) {
    absl::StrAppend(&out, "  ", reason, ": ", count, "\n");
  }
  for (const LineIssue& issue : first_issues) absl::StrAppend(&out, "  e.g. ", issue.ToString(), "\n");
  absl::StrAppend(&out, "interactions: ", interactions, " (not positive: ", not_positive,
                  ", removed by k-core: ", removed_by_kcore, ")\n");
  absl::StrAppend(&out, "users: ", users, "\nitems: ", items, "\n");
  absl::StrAppend(&out, "examples: train ", examples[0], ", valid ", examples[1], ", test ",
                  examples[2]);
  if (examples[3] > 0) absl::StrAppend(&out, ", cold ", examples[3]);
  absl::StrAppend(&out, "\n");
  if (!output_dir.empty()) absl::StrAppend(&out, "output: ", output_dir, "\n");
  return out;
}

absl::StatusOr<PrepareResult> Prepare(const PrepareOptions& options, const PrepareHook& hook,
                                      const std::atomic<bool>* cancel) {
  TOWERPS_RETURN_IF_ERROR(options.Validate());
  std::string output_dir = options.output_dir;
  while (output_dir.size() > 1 && output_dir.back() == '/') output_dir.pop_back();
  if (IsNonEmptyDir(output_dir) && !options.overwrite) {
    return absl::FailedPreconditionError(absl::StrCat(output_dir, " exists (use --overwrite)"));
  }
  RemoveStaleTempDirs(output_dir);
  const std::string tmp = absl::StrCat(TempPrefix(output_dir), ::getpid());
  TOWERPS_RETURN_IF_ERROR(RemoveAll(tmp));
  PrepareResult result;
  absl::Status status = PrepareInto(options, tmp, hook, cancel, &result);
  if (status.ok()) status = RunHook(hook, "commit");
  if (status.ok()) status = Commit(tmp, output_dir, options.overwrite);
  if (!status.ok()) {
    absl::Status removed = RemoveAll(tmp);
    if (!removed.ok()) LOG(ERROR) << "could not remove " << tmp << ": " << removed;
    return status;
  }
  result.output_dir = output_dir;
  return result;
}

}  // namespace towerps::data
