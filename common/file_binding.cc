#include "common/file_binding.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/pod_bytes.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/checksum.h"
#include "common/hash.h"
#include "common/status.h"
#include "glog/logging.h"

namespace towerps {
namespace {

constexpr char kMagic[8] = {'T', 'W', 'P', 'S', 'B', 'N', 'D', '\0'};
constexpr uint32_t kVersion = 1;
constexpr size_t kCrcOffset = 120;


}  // namespace

std::string EncodeFileBinding(const FileBinding& b) {
  CHECK_LE(b.name.size(), kMaxBindingNameBytes) << b.name;
  std::string out(kMagic, sizeof(kMagic));
  AppendPod(&out, kVersion);
  AppendPod(&out, b.rank);
  AppendPod(&out, b.job_id);
  AppendPod(&out, b.step);
  AppendPod(&out, b.fingerprint);
  AppendPod(&out, static_cast<uint32_t>(b.name.size()));
  out.append(b.name);
  out.resize(44 + kMaxBindingNameBytes, '\0');
  AppendPod(&out, uint32_t{0});
  AppendPod(&out, MaskCrc32c(Crc32c(out)));
  AppendPod(&out, uint32_t{0});
  DCHECK_EQ(out.size(), kFileBindingBytes);
  return out;
}

absl::StatusOr<FileBinding> DecodeFileBinding(absl::string_view bytes, const std::string& path) {
  if (bytes.size() < kFileBindingBytes || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    return absl::DataLossError(
        absl::StrCat(path,
                     ": not bound to a job (no checkpoint binding at its start; a file of an older "
                     "towerps, or not a checkpoint file)"));
  }
  const char* p = bytes.data();
  if (UnmaskCrc32c(LoadPod<uint32_t>(p + kCrcOffset)) != Crc32c(absl::string_view(p, kCrcOffset))) {
    return absl::DataLossError(absl::StrCat(path, ": checkpoint binding checksum mismatch"));
  }
  if (LoadPod<uint32_t>(p + 8) != kVersion) {
    return absl::DataLossError(
        absl::StrCat(path, ": unsupported checkpoint binding version ", LoadPod<uint32_t>(p + 8)));
  }
  const uint32_t name_bytes = LoadPod<uint32_t>(p + 40);
  if (name_bytes > kMaxBindingNameBytes) {
    return absl::DataLossError(absl::StrCat(path, ": bad name length in its binding"));
  }
  FileBinding b;
  b.rank = LoadPod<int32_t>(p + 12);
  b.job_id = LoadPod<uint64_t>(p + 16);
  b.step = LoadPod<int64_t>(p + 24);
  b.fingerprint = LoadPod<uint64_t>(p + 32);
  b.name.assign(p + 44, name_bytes);
  return b;
}

absl::StatusOr<FileBinding> ReadFileBinding(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open ", path));
  char buf[kFileBindingBytes];
  size_t got = 0;
  while (got < sizeof(buf)) {
    const ssize_t r = ::read(fd, buf + got, sizeof(buf) - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  ::close(fd);
  return DecodeFileBinding(absl::string_view(buf, got), path);
}

std::string BindingDifference(const FileBinding& actual, const FileBinding& expected,
                              bool compare_origin) {
  std::vector<std::string> diffs;
  if (compare_origin) {
    if (actual.job_id != expected.job_id) {
      diffs.push_back(absl::StrFormat("job %016x, not %016x", actual.job_id, expected.job_id));
    }
    if (actual.step != expected.step) {
      diffs.push_back(absl::StrCat("step ", actual.step, ", not ", expected.step));
    }
    if (actual.rank != expected.rank) {
      diffs.push_back(absl::StrCat("server rank ", actual.rank, ", not ", expected.rank));
    }
  }
  if (actual.name != expected.name) {
    // The name read from a file may hold any bytes: escaped, the message stays one line.
    diffs.push_back(absl::StrCat("table '", absl::CHexEscape(actual.name), "', not '",
                                 absl::CHexEscape(expected.name), "'"));
  }
  if (actual.fingerprint != expected.fingerprint) {
    diffs.push_back(absl::StrFormat(
        "config fingerprint %016x, not %016x (dim, optimizer or initializer changed)",
        actual.fingerprint, expected.fingerprint));
  }
  return absl::StrJoin(diffs, "; ");
}

absl::Status CheckFileBinding(const FileBinding& actual, const FileBinding& expected,
                              bool compare_origin, const std::string& path) {
  const std::string diff = BindingDifference(actual, expected, compare_origin);
  if (diff.empty()) return absl::OkStatus();
  const std::string message = absl::StrCat(path, " belongs elsewhere: ", diff);
  if (actual.name != expected.name || actual.fingerprint != expected.fingerprint) {
    return absl::InvalidArgumentError(message);
  }
  return absl::DataLossError(message);
}

uint64_t FingerprintOf(absl::string_view text) {
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a, then the project's mixer
  for (unsigned char c : text) h = (h ^ c) * 0x100000001b3ULL;
  return Mix64(h);
}

}  // namespace towerps
