#include "ps/checkpoint.h"

#include <algorithm>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/checksum.h"
#include "common/file_util.h"
#include "common/status.h"
#include "glog/logging.h"

namespace towerps::ps {
namespace {

constexpr char kManifest[] = "MANIFEST";
constexpr char kHeader[] = "towerps-checkpoint 1";

absl::Status Malformed(const std::string& dir, absl::string_view why) {
  return absl::DataLossError(absl::StrCat(dir, "/", kManifest, ": malformed (", why, ")"));
}

}  // namespace

std::string CheckpointDir(const std::string& root, int64_t step) {
  return absl::StrFormat("%s/step-%010d", root, step);
}

absl::StatusOr<CheckpointFile> DescribeFile(const std::string& dir, const std::string& name) {
  TOWERPS_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(dir + "/" + name));
  return CheckpointFile{name, bytes.size(), Crc32c(bytes)};
}

absl::Status WriteManifest(const std::string& dir, const CheckpointManifest& m) {
  std::string text = absl::StrCat(kHeader, "\nstep ", m.step, "\nservers ", m.num_servers,
                                  "\nvirtual_shards ", m.num_virtual_shards, "\ndense_params ",
                                  m.dense_params, "\n");
  for (const CheckpointFile& f : m.files) {
    absl::StrAppendFormat(&text, "file %s %d %08x\n", f.name, f.bytes, f.crc32c);
  }
  for (const PartitionProgress& p : m.partitions) {
    absl::StrAppend(&text, "partition ", p.id, " ", p.offset, " ", p.done ? 1 : 0, "\n");
  }
  return WriteFileAtomically(dir + "/" + kManifest, text);
}

absl::StatusOr<CheckpointManifest> VerifyCheckpoint(const std::string& dir) {
  auto text = ReadFileToString(dir + "/" + kManifest);
  if (absl::IsNotFound(text.status())) {
    return absl::DataLossError(absl::StrCat(dir, ": torn checkpoint (no ", kManifest,
                                            "; it is written last)"));
  }
  TOWERPS_RETURN_IF_ERROR(text.status());
  std::vector<std::string> lines = absl::StrSplit(*text, '\n', absl::SkipEmpty());
  if (lines.empty() || lines[0] != kHeader) return Malformed(dir, "header");
  CheckpointManifest m;
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<std::string> f = absl::StrSplit(lines[i], ' ');
    bool ok = true;
    if (f[0] == "step" && f.size() == 2) {
      ok = absl::SimpleAtoi(f[1], &m.step);
    } else if (f[0] == "servers" && f.size() == 2) {
      ok = absl::SimpleAtoi(f[1], &m.num_servers);
    } else if (f[0] == "virtual_shards" && f.size() == 2) {
      ok = absl::SimpleAtoi(f[1], &m.num_virtual_shards);
    } else if (f[0] == "dense_params" && f.size() == 2) {
      ok = absl::SimpleAtoi(f[1], &m.dense_params);
    } else if (f[0] == "file" && f.size() == 4) {
      CheckpointFile file;
      file.name = f[1];
      ok = absl::SimpleAtoi(f[2], &file.bytes) && absl::SimpleHexAtoi(f[3], &file.crc32c) &&
           file.name.find('/') == std::string::npos;
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
  for (const CheckpointFile& expected : m.files) {
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
  return m;
}

absl::StatusOr<std::string> LatestCheckpoint(const std::string& root) {
  std::vector<std::string> dirs;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(root, ec)) {
    std::string name = entry.path().filename().string();
    if (entry.is_directory() && name.rfind("step-", 0) == 0) dirs.push_back(entry.path().string());
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

}  // namespace towerps::ps
