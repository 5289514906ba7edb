#include "ps/checkpoint.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/checksum.h"
#include "common/file_binding.h"
#include "common/file_util.h"
#include "common/status.h"
#include "glog/logging.h"

namespace towerps::ps {
namespace {

constexpr char kManifest[] = "MANIFEST";
constexpr char kHeader[] = "towerps-checkpoint 3";
constexpr char kFormat2Header[] = "towerps-checkpoint 2";  // no base lines: full ones
constexpr char kOldHeader[] = "towerps-checkpoint 1";
// Bounds a chain walk; steps strictly decrease along a chain, so it also ends.
constexpr size_t kMaxChainLinks = 100000;

absl::Status Malformed(const std::string& dir, absl::string_view why) {
  return absl::DataLossError(absl::StrCat(dir, "/", kManifest, ": malformed (", why, ")"));
}

// A file name a MANIFEST may list: one plain path component.
bool PlainName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

// The N of a directory named step-N, or -1.
int64_t StepOfName(const std::string& name) {
  int64_t step = -1;
  if (name.size() <= 5 || name.rfind("step-", 0) != 0) return -1;
  if (!std::all_of(name.begin() + 5, name.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return -1;
  }
  return absl::SimpleAtoi(name.substr(5), &step) ? step : -1;
}

// `dir` without a trailing separator.
std::filesystem::path Normal(const std::string& dir) {
  std::filesystem::path p = std::filesystem::path(dir).lexically_normal();
  return p.has_filename() ? p : p.parent_path();
}

}  // namespace

std::string CheckpointName(int64_t step) { return absl::StrFormat("step-%010d", step); }

std::string CheckpointDir(const std::string& root, int64_t step) {
  return absl::StrCat(root, "/", CheckpointName(step));
}

uint64_t NewJobId() {
  std::random_device random;
  uint64_t id = 0;
  while (id == 0) id = (uint64_t{random()} << 32) ^ random();
  return id;
}

absl::StatusOr<CheckpointFile> DescribeFile(const std::string& dir, const std::string& name) {
  TOWERPS_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(dir + "/" + name));
  return CheckpointFile{name, bytes.size(), Crc32c(bytes)};
}

absl::Status WriteManifest(const std::string& dir, const CheckpointManifest& m) {
  std::string text = absl::StrFormat("%s\njob %016x\n", kHeader, m.job_id);
  absl::StrAppend(&text, "step ", m.step, "\n");
  if (m.base_step >= 0) {
    if (m.base_step >= m.step) {
      return absl::InvalidArgumentError(absl::StrCat("checkpoint of step ", m.step,
                                                     " cannot have base step ", m.base_step));
    }
    absl::StrAppend(&text, "base ", m.base_step, "\n");
  }
  absl::StrAppend(&text, "servers ", m.num_servers, "\nvirtual_shards ",
                  m.num_virtual_shards, "\ndense_params ", m.dense_params, "\n");
  for (const CheckpointFile& f : m.files) {
    if (!PlainName(f.name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("checkpoint file name '", f.name, "' is not a plain name"));
    }
    absl::StrAppendFormat(&text, "file %s %d %08x\n", f.name, f.bytes, f.crc32c);
  }
  for (const PartitionProgress& p : m.partitions) {
    absl::StrAppend(&text, "partition ", p.id, " ", p.offset, " ", p.done ? 1 : 0, "\n");
  }
  return WriteFileAtomically(dir + "/" + kManifest, text);
}

absl::StatusOr<CheckpointManifest> ReadManifest(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return absl::NotFoundError(
        absl::StrCat(dir, ": checkpoint directory does not exist",
                     std::filesystem::exists(dir, ec) ? " (it is not a directory)" : ""));
  }
  auto text = ReadFileToString(dir + "/" + kManifest);
  if (absl::IsNotFound(text.status())) {
    return absl::DataLossError(absl::StrCat(dir, ": torn checkpoint (no ", kManifest,
                                            "; it is written last)"));
  }
  TOWERPS_RETURN_IF_ERROR(text.status());
  std::vector<std::string> lines = absl::StrSplit(*text, '\n', absl::SkipEmpty());
  if (!lines.empty() && lines[0] == kOldHeader) {
    return absl::DataLossError(
        absl::StrCat(dir,
                     ": a checkpoint of an older towerps (format 1, files not bound to their job); "
                     "it cannot be loaded"));
  }
  if (lines.empty() || (lines[0] != kHeader && lines[0] != kFormat2Header)) {
    return Malformed(dir, "header");
  }
  const bool format2 = lines[0] == kFormat2Header;
  CheckpointManifest m;
  bool has_job = false, has_base = false;
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<std::string> f = absl::StrSplit(lines[i], ' ');
    bool ok = true;
    if (f[0] == "job" && f.size() == 2) {
      ok = absl::SimpleHexAtoi(f[1], &m.job_id) && !has_job;
      has_job = true;
    } else if (f[0] == "step" && f.size() == 2) {
      ok = absl::SimpleAtoi(f[1], &m.step) && m.step >= 0;
    } else if (f[0] == "base" && f.size() == 2 && !format2) {
      ok = absl::SimpleAtoi(f[1], &m.base_step) && m.base_step >= 0 && !has_base;
      has_base = true;
    } else if (f[0] == "servers" && f.size() == 2) {
      ok = absl::SimpleAtoi(f[1], &m.num_servers) && m.num_servers > 0;
    } else if (f[0] == "virtual_shards" && f.size() == 2) {
      ok = absl::SimpleAtoi(f[1], &m.num_virtual_shards);
    } else if (f[0] == "dense_params" && f.size() == 2) {
      ok = absl::SimpleAtoi(f[1], &m.dense_params);
    } else if (f[0] == "file" && f.size() == 4) {
      CheckpointFile file;
      file.name = f[1];
      ok = absl::SimpleAtoi(f[2], &file.bytes) && absl::SimpleHexAtoi(f[3], &file.crc32c) &&
           PlainName(file.name);
      m.files.push_back(file);
    } else if (f[0] == "partition" && f.size() == 4) {
      PartitionProgress p;
      int done = 0;
      ok = absl::SimpleAtoi(f[1], &p.id) && absl::SimpleAtoi(f[2], &p.offset) &&
           absl::SimpleAtoi(f[3], &done) && p.id == static_cast<int>(m.partitions.size()) &&
           p.offset >= 0 && (done == 0 || done == 1);
      p.done = done == 1;
      m.partitions.push_back(p);
    } else {
      ok = false;
    }
    if (!ok) return Malformed(dir, absl::StrCat("line ", i + 1));
  }
  if (!has_job) return Malformed(dir, "no job line");
  if (m.base_step >= m.step) return Malformed(dir, "base step not older than the step");
  // A whole checkpoint copied under another step's name would otherwise load as that step.
  const int64_t named = StepOfName(Normal(dir).filename());
  if (named >= 0 && named != m.step) {
    return absl::DataLossError(
        absl::StrCat(dir, ": its ", kManifest, " is of step ", m.step, ", not ", named));
  }
  return m;
}

absl::Status VerifyFiles(const std::string& dir, const CheckpointManifest& m,
                         const std::function<bool(const std::string&)>& wanted) {
  for (const CheckpointFile& expected : m.files) {
    if (wanted && !wanted(expected.name)) continue;
    const std::string path = absl::StrCat(dir, "/", expected.name);
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) {
      return absl::DataLossError(
          absl::StrCat(dir, ": checkpoint file ", expected.name, " is missing"));
    }
    if (!S_ISREG(st.st_mode)) {
      return absl::DataLossError(absl::StrCat(path, " is not a regular file (a symlink?)"));
    }
    // The binding first: a file copied in from another step or job says so.
    TOWERPS_ASSIGN_OR_RETURN(FileBinding binding, ReadFileBinding(path));
    FileBinding want = binding;
    want.job_id = m.job_id;
    want.step = m.step;
    TOWERPS_RETURN_IF_ERROR(CheckFileBinding(binding, want, /*compare_origin=*/true, path));
    auto actual = DescribeFile(dir, expected.name);
    if (!actual.ok()) {
      return absl::DataLossError(absl::StrCat(dir, ": checkpoint file ", expected.name,
                                              " is unreadable: ", actual.status().message()));
    }
    if (actual->bytes != expected.bytes || actual->crc32c != expected.crc32c) {
      return absl::DataLossError(absl::StrFormat(
          "%s: checkpoint file %s is corrupt (%d bytes, crc %08x; the manifest says %d "
          "bytes, crc %08x)",
          dir, expected.name, actual->bytes, actual->crc32c, expected.bytes, expected.crc32c));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ChainLink>> ReadChain(const std::string& dir) {
  std::vector<ChainLink> chain;
  TOWERPS_ASSIGN_OR_RETURN(CheckpointManifest head, ReadManifest(dir));
  chain.push_back({dir, std::move(head)});
  const std::filesystem::path parent = Normal(dir).parent_path();
  while (chain.back().manifest.base_step >= 0) {
    const CheckpointManifest& last = chain.back().manifest;
    const std::string base = (parent / CheckpointName(last.base_step)).string();
    const std::string link = absl::StrCat(dir, ": its chain's link ", base);
    if (chain.size() >= kMaxChainLinks) {
      return absl::DataLossError(absl::StrCat(dir, ": a chain of over ", kMaxChainLinks, " links"));
    }
    struct stat st;
    if (::lstat(base.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
      return absl::DataLossError(absl::StrCat(link, " is a symlink"));
    }
    auto manifest = ReadManifest(base);
    if (!manifest.ok()) {
      return absl::DataLossError(absl::StrCat(link, " is unusable: ", manifest.status().message()));
    }
    const CheckpointManifest& head = chain.front().manifest;
    if (manifest->job_id != head.job_id || manifest->num_servers != head.num_servers ||
        manifest->num_virtual_shards != head.num_virtual_shards ||
        manifest->dense_params != head.dense_params) {
      return absl::DataLossError(absl::StrCat(
          link, " is of another job or shape (job, servers, virtual shards or dense size differ)"));
    }
    chain.push_back({base, *std::move(manifest)});
  }
  std::reverse(chain.begin(), chain.end());
  return chain;
}

absl::StatusOr<CheckpointManifest> VerifyCheckpoint(const std::string& dir) {
  TOWERPS_ASSIGN_OR_RETURN(std::vector<ChainLink> chain, ReadChain(dir));
  for (const ChainLink& link : chain) {
    absl::Status verified = VerifyFiles(link.dir, link.manifest);
    if (!verified.ok() && link.dir != dir) {
      return absl::DataLossError(absl::StrCat(dir, ": its chain's link ", link.dir,
                                              " is corrupt: ", verified.message()));
    }
    TOWERPS_RETURN_IF_ERROR(verified);
  }
  return std::move(chain.back().manifest);
}

absl::StatusOr<std::string> LatestCheckpoint(const std::string& root) {
  std::vector<std::string> dirs;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(root, ec)) {
    std::string name = entry.path().filename().string();
    if (entry.is_directory() && StepOfName(name) >= 0) dirs.push_back(entry.path().string());
  }
  if (ec == std::errc::no_such_file_or_directory) {
    return absl::NotFoundError(absl::StrCat(root, ": checkpoint root does not exist"));
  }
  if (ec) return ErrnoToStatus(ec.value(), absl::StrCat("list ", root));
  std::sort(dirs.rbegin(), dirs.rend());  // zero-padded steps sort by name
  for (const std::string& dir : dirs) {
    auto manifest = VerifyCheckpoint(dir);
    if (manifest.ok()) return dir;
    LOG(WARNING) << "skipping checkpoint " << dir << ": " << manifest.status();
  }
  return absl::NotFoundError(absl::StrCat("no complete checkpoint under ", root));
}

absl::StatusOr<int> PruneCheckpoints(const std::string& root, int keep_full_chains) {
  namespace fs = std::filesystem;
  if (keep_full_chains <= 0) return 0;
  auto latest = LatestCheckpoint(root);
  if (absl::IsNotFound(latest.status())) {
    LOG(WARNING) << "checkpoint retention: no complete checkpoint under " << root
                 << "; nothing deleted";
    return 0;
  }
  TOWERPS_RETURN_IF_ERROR(latest.status());
  TOWERPS_ASSIGN_OR_RETURN(std::vector<ChainLink> newest, ReadChain(*latest));
  const int64_t newest_step = newest.back().manifest.step;
  const int64_t newest_root = newest.front().manifest.step;

  // Plain step-N directories only (not following symlinks), newest first.
  std::vector<std::pair<int64_t, std::string>> dirs;
  std::error_code ec;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const int64_t step = StepOfName(name);
    std::error_code type_ec;
    if (step >= 0 && name == CheckpointName(step) &&
        it->symlink_status(type_ec).type() == fs::file_type::directory) {
      dirs.emplace_back(step, it->path().string());
    } else {
      LOG(INFO) << "checkpoint retention: leaving " << it->path().string()
                << " alone (not a step-N directory)";
    }
  }
  if (ec) return ErrnoToStatus(ec.value(), absl::StrCat("list ", root));
  std::sort(dirs.rbegin(), dirs.rend());

  // The newest keep_full_chains full checkpoints that verify, and the newest complete
  // chain's root whatever they are: nothing at or after the oldest of them is deleted.
  int64_t oldest_kept = newest_root;
  int kept = 0;
  for (const auto& [step, dir] : dirs) {
    if (kept == keep_full_chains) break;
    // Newer than the newest complete checkpoint: none of these verify.
    if (step > newest_step) continue;
    auto manifest = ReadManifest(dir);
    if (!manifest.ok() || manifest->base_step >= 0) continue;
    if (step != newest_root) {
      auto verified = VerifyCheckpoint(dir);
      if (!verified.ok()) {
        LOG(WARNING) << "checkpoint retention: not keeping " << dir << " as a full one: "
                     << verified.status();
        continue;
      }
    }
    ++kept;
    oldest_kept = std::min(oldest_kept, step);
  }

  int deleted = 0;
  for (auto it = dirs.rbegin(); it != dirs.rend() && it->first < oldest_kept; ++it) {
    absl::Status removed = RemoveAll(it->second);
    if (!removed.ok()) {
      return absl::Status(removed.code(),
                          absl::StrCat("checkpoint retention: ", removed.message(), " (after ",
                                       deleted, " deleted)"));
    }
    LOG(INFO) << "checkpoint retention: deleted step " << it->first << " (older than full step "
              << oldest_kept << ")";
    ++deleted;
  }
  return deleted;
}

absl::StatusOr<int64_t> CheckpointStepUnder(const std::string& root, const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path resolved = fs::weakly_canonical(dir, ec);
  const fs::path resolved_root = fs::weakly_canonical(root, ec);
  const int64_t step = StepOfName(resolved.filename().string());
  if (ec || step < 0 || resolved.parent_path() != resolved_root) {
    return absl::InvalidArgumentError(absl::StrCat(
        dir, " is not a checkpoint of this run (", root,
        "/step-N): servers find the checkpoint under their own root by its step; copy it "
        "there"));
  }
  return step;
}

}  // namespace towerps::ps
