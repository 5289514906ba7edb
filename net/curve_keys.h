// The key files of a secured job (`towerps keygen`, `--curve_dir`), and their parsing.
//
// A key directory holds, for every identity of the job:
//   <stem>.public   one line: the identity's CURVE public key, Z85 (40 characters)
//   <stem>.secret   one line: its secret key, Z85; mode 0600
// where <stem> is the identity with '/' replaced by '-' ("ps/0" -> "ps-0"), and one
//   allowed_keys    one line per identity: "<identity> <public key, Z85>"; blank lines
//                   and lines starting with '#' are ignored (the identity comes first
//                   because '#' is a Z85 character)
// Identities: "scheduler", "ps/<rank>", "worker/<rank>", "operator" (ctl, export,
// query), "serve". Every file is parsed as hostile input: a bad line is refused with
// "<file>:<line>: <what>". Format and threat model: docs/security.md.
//
// Functions are thread-safe (no shared state); JobKeys is a value (thread-compatible).
#ifndef TOWERPS_NET_CURVE_KEYS_H_
#define TOWERPS_NET_CURVE_KEYS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "net/transport.h"

namespace towerps::net {

inline constexpr char kAllowListFile[] = "allowed_keys";
inline constexpr char kOperatorIdentity[] = "operator";
inline constexpr char kSchedulerIdentity[] = "scheduler";
inline constexpr char kServeIdentity[] = "serve";

// Allowed public key (Z85) -> identity.
using AllowList = std::map<std::string, std::string>;

// "<role>/<rank>", e.g. NodeIdentity("ps", 0) == "ps/0".
std::string NodeIdentity(absl::string_view role, int rank);

// OK for "scheduler", "operator", "serve", "ps/<rank>", "worker/<rank>" (rank a decimal
// int32 >= 0 without sign or leading zeros); InvalidArgument otherwise.
absl::Status ValidateIdentity(absl::string_view identity);

// OK for a Z85 CURVE key: 40 characters of the Z85 alphabet. InvalidArgument otherwise.
absl::Status ValidateZ85Key(absl::string_view key);

// Parses allow-list text (format above). `name` prefixes errors ("<name>:<line>: ...").
// Errors: InvalidArgument for a malformed line, a bad key or identity, or a key or
// identity listed twice.
absl::StatusOr<AllowList> ParseAllowList(absl::string_view text, absl::string_view name);

// Parses a key file: one Z85 key, optionally followed by a newline. InvalidArgument
// ("<name>:1: ...") otherwise.
absl::StatusOr<std::string> ParseKeyFile(absl::string_view text, absl::string_view name);

// A node's keys in a secured job: its identity's pair and the job's allow-list.
// Default-constructed: CURVE off (insecure mode).
struct JobKeys {
  std::string identity;
  std::string public_key;
  std::string secret_key;
  AllowList allowed;

  bool enabled() const { return !secret_key.empty(); }
  // The public key listed for `identity`. NotFound when the allow-list lacks it.
  absl::StatusOr<std::string> PublicKeyOf(absl::string_view identity) const;
  // Keys for a server socket (empty when !enabled()).
  CurveKeys ServerCurve() const;
  // Keys for a client of the server `server_identity` (empty when !enabled()).
  // NotFound when the allow-list lacks it.
  absl::StatusOr<CurveKeys> ClientCurve(absl::string_view server_identity) const;
  // The public keys of ps/0 .. ps/<num_servers - 1>, by rank (PsClientOptions::
  // server_public_keys); empty when !enabled(). NotFound when one is missing.
  absl::StatusOr<std::vector<std::string>> ServerPublicKeys(int num_servers) const;
};

// Loads `identity`'s key pair and the allow-list from `dir`. Errors: NotFound for a
// missing file; InvalidArgument for a malformed one or a bad identity;
// FailedPrecondition when the secret file is readable by group or others, or the
// allow-list does not list this public key as `identity`.
absl::StatusOr<JobKeys> LoadJobKeys(const std::string& dir, const std::string& identity);

struct KeygenOptions {
  // Directory to write into (created if missing). Required.
  std::string output_dir;
  // Parameter servers and workers in the job: one identity per rank; >= 1.
  int num_servers = 1;
  int num_workers = 1;

  absl::Status Validate() const;
};

// Writes a fresh key pair for every identity of the job (scheduler, ps/0..N-1,
// worker/0..M-1, operator, serve), secret files with mode 0600, each file atomically,
// the allow-list last. Returns the identities. Errors: AlreadyExists when the
// directory already holds an allow-list (a job's keys are never replaced silently),
// Unimplemented when libzmq lacks CURVE, file errors.
absl::StatusOr<std::vector<std::string>> GenerateJobKeys(const KeygenOptions& options);

}  // namespace towerps::net

#endif  // TOWERPS_NET_CURVE_KEYS_H_
