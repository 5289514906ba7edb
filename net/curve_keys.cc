#include "net/curve_keys.h"

#include <sys/stat.h>
#include <zmq.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/file_util.h"
#include "common/status.h"

namespace towerps::net {
namespace {

constexpr size_t kZ85KeyChars = 40;
// Key files are one line; an allow-list is one short line per node. Anything much
// bigger is not a key file: refuse it before reading it whole.
constexpr int64_t kMaxKeyFileBytes = 1 << 20;

std::string FileStem(absl::string_view identity) {
  return absl::StrReplaceAll(identity, {{"/", "-"}});
}

absl::StatusOr<std::string> ReadSmallFile(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoToStatus(errno, absl::StrCat("stat ", path));
  if (!S_ISREG(st.st_mode) || st.st_size > kMaxKeyFileBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, " is not a key file (not a regular file of at most ", kMaxKeyFileBytes, " bytes)"));
  }
  return ReadFileToString(path);
}

absl::Status LineError(absl::string_view name, int line, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(name, ":", line, ": ", what));
}

}  // namespace

std::string NodeIdentity(absl::string_view role, int rank) { return absl::StrCat(role, "/", rank); }

absl::Status ValidateIdentity(absl::string_view identity) {
  if (identity == kSchedulerIdentity || identity == kOperatorIdentity ||
      identity == kServeIdentity) {
    return absl::OkStatus();
  }
  const size_t slash = identity.find('/');
  const absl::string_view role = identity.substr(0, slash);
  const absl::string_view rank =
      slash == absl::string_view::npos ? absl::string_view() : identity.substr(slash + 1);
  int32_t value = 0;
  const bool digits =
      !rank.empty() && rank.size() <= 10 && std::all_of(rank.begin(), rank.end(), [](char c) {
        return absl::ascii_isdigit(static_cast<unsigned char>(c));
      });
  const bool rank_ok = digits && (rank.size() == 1 || rank[0] != '0') &&
                       absl::SimpleAtoi(rank, &value) && value >= 0;
  if ((role == "ps" || role == "worker") && rank_ok) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("bad identity '", absl::CHexEscape(identity.substr(0, 64)),
                   "' (scheduler, ps/<rank>, worker/<rank>, operator or serve)"));
}

absl::Status ValidateZ85Key(absl::string_view key) {
  if (key.size() != kZ85KeyChars) {
    return absl::InvalidArgumentError(
        absl::StrCat("a CURVE key is ", kZ85KeyChars, " Z85 characters, not ", key.size()));
  }
  const std::string text(key);
  uint8_t decoded[32];
  if (zmq_z85_decode(decoded, text.c_str()) == nullptr) {
    return absl::InvalidArgumentError("not a Z85-encoded CURVE key");
  }
  return absl::OkStatus();
}

absl::StatusOr<AllowList> ParseAllowList(absl::string_view text, absl::string_view name) {
  AllowList allowed;
  std::set<std::string> identities;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (fields.size() != 2) {
      return LineError(name, line_number, "expected '<identity> <public key>'");
    }
    if (absl::Status valid = ValidateIdentity(fields[0]); !valid.ok()) {
      return LineError(name, line_number, valid.message());
    }
    if (absl::Status valid = ValidateZ85Key(fields[1]); !valid.ok()) {
      return LineError(name, line_number, valid.message());
    }
    if (!identities.insert(std::string(fields[0])).second) {
      return LineError(name, line_number, absl::StrCat(fields[0], " is listed twice"));
    }
    if (!allowed.emplace(std::string(fields[1]), std::string(fields[0])).second) {
      return LineError(name, line_number, "this public key is listed twice");
    }
  }
  return allowed;
}

absl::StatusOr<std::string> ParseKeyFile(absl::string_view text, absl::string_view name) {
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  if (absl::Status valid = ValidateZ85Key(text); !valid.ok()) {
    return LineError(name, 1, valid.message());
  }
  return std::string(text);
}

absl::StatusOr<std::string> JobKeys::PublicKeyOf(absl::string_view of) const {
  for (const auto& [key, listed] : allowed) {
    if (listed == of) return key;
  }
  return absl::NotFoundError(absl::StrCat("the job's ", kAllowListFile, " has no key for ", of));
}

CurveKeys JobKeys::ServerCurve() const {
  CurveKeys curve;
  if (!enabled()) return curve;
  curve.public_key = public_key;
  curve.secret_key = secret_key;
  return curve;
}

absl::StatusOr<CurveKeys> JobKeys::ClientCurve(absl::string_view server_identity) const {
  CurveKeys curve = ServerCurve();
  if (!enabled()) return curve;
  TOWERPS_ASSIGN_OR_RETURN(curve.server_public_key, PublicKeyOf(server_identity));
  return curve;
}

absl::StatusOr<std::vector<std::string>> JobKeys::ServerPublicKeys(int num_servers) const {
  std::vector<std::string> keys;
  if (!enabled()) return keys;
  for (int r = 0; r < num_servers; ++r) {
    TOWERPS_ASSIGN_OR_RETURN(std::string key, PublicKeyOf(NodeIdentity("ps", r)));
    keys.push_back(std::move(key));
  }
  return keys;
}

absl::StatusOr<JobKeys> LoadJobKeys(const std::string& dir, const std::string& identity) {
  TOWERPS_RETURN_IF_ERROR(ValidateIdentity(identity));
  JobKeys keys;
  keys.identity = identity;
  const std::string stem = absl::StrCat(dir, "/", FileStem(identity));
  const std::string public_path = stem + ".public";
  const std::string secret_path = stem + ".secret";
  const std::string allow_path = absl::StrCat(dir, "/", kAllowListFile);
  TOWERPS_ASSIGN_OR_RETURN(std::string public_text, ReadSmallFile(public_path));
  TOWERPS_ASSIGN_OR_RETURN(keys.public_key, ParseKeyFile(public_text, public_path));
  struct stat st;
  if (::stat(secret_path.c_str(), &st) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("stat ", secret_path));
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(secret_path, " is accessible by group or others (mode ",
                     absl::StrFormat("%04o", st.st_mode & 07777), "); chmod 600 it"));
  }
  TOWERPS_ASSIGN_OR_RETURN(std::string secret_text, ReadSmallFile(secret_path));
  TOWERPS_ASSIGN_OR_RETURN(keys.secret_key, ParseKeyFile(secret_text, secret_path));
  TOWERPS_ASSIGN_OR_RETURN(std::string allow_text, ReadSmallFile(allow_path));
  TOWERPS_ASSIGN_OR_RETURN(keys.allowed, ParseAllowList(allow_text, allow_path));
  auto listed = keys.allowed.find(keys.public_key);
  if (listed == keys.allowed.end() || listed->second != identity) {
    return absl::FailedPreconditionError(
        absl::StrCat(public_path, " is not listed as ", identity, " in ", allow_path));
  }
  return keys;
}

absl::Status KeygenOptions::Validate() const {
  if (output_dir.empty()) return absl::InvalidArgumentError("the output directory is empty");
  if (num_servers < 1 || num_workers < 1) {
    return absl::InvalidArgumentError("num_servers and num_workers must be >= 1");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> GenerateJobKeys(const KeygenOptions& options) {
  TOWERPS_RETURN_IF_ERROR(options.Validate());
  const std::string allow_path = absl::StrCat(options.output_dir, "/", kAllowListFile);
  if (PathExists(allow_path)) {
    return absl::AlreadyExistsError(
        absl::StrCat(allow_path,
                     " exists: a job's keys are never replaced (remove the "
                     "directory to make new ones)"));
  }
  TOWERPS_RETURN_IF_ERROR(CreateDirectories(options.output_dir));
  std::vector<std::string> identities = {kSchedulerIdentity};
  for (int r = 0; r < options.num_servers; ++r) identities.push_back(NodeIdentity("ps", r));
  for (int r = 0; r < options.num_workers; ++r) identities.push_back(NodeIdentity("worker", r));
  identities.push_back(kOperatorIdentity);
  identities.push_back(kServeIdentity);
  std::string allow_list =
      "# towerps allow-list: <identity> <CURVE public key, Z85>; see docs/security.md\n";
  for (const std::string& identity : identities) {
    TOWERPS_ASSIGN_OR_RETURN(CurveKeys pair, GenerateCurveKeys());
    const std::string stem = absl::StrCat(options.output_dir, "/", FileStem(identity));
    TOWERPS_RETURN_IF_ERROR(WriteFileAtomically(stem + ".secret", pair.secret_key + "\n", 0600));
    TOWERPS_RETURN_IF_ERROR(WriteFileAtomically(stem + ".public", pair.public_key + "\n"));
    absl::StrAppend(&allow_list, identity, " ", pair.public_key, "\n");
  }
  TOWERPS_RETURN_IF_ERROR(WriteFileAtomically(allow_path, allow_list));
  return identities;
}

}  // namespace towerps::net
