// --curve_dir, shared by every subcommand that opens a socket (scheduler, ps, worker,
// ctl, export, serve, query), and the helpers that turn it into keys. A subcommand
// that accepts it lists "cmd/curve_flags.cc" in its flag files.
#ifndef TOWERPS_CMD_CURVE_FLAGS_H_
#define TOWERPS_CMD_CURVE_FLAGS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/metrics.h"
#include "gflags/gflags.h"
#include "net/curve_keys.h"
#include "net/transport.h"
#include "net/zap_authenticator.h"

DECLARE_string(curve_dir);

namespace towerps::cmd {

// The job's keys as `identity` from --curve_dir; CURVE off (a default JobKeys) when
// the flag is empty. Errors: LoadJobKeys's.
absl::StatusOr<net::JobKeys> CurveKeysFromFlags(const std::string& identity);

// With --curve_dir, `rank` must be explicit: InvalidArgument naming `rank_flag`
// ("--rank") when it is < 0.
absl::Status RequireRankWithCurve(int rank, const char* rank_flag);

// The process's ZAP handler when `keys` are enabled (start it before any server
// socket binds); null when CURVE is off.
absl::StatusOr<std::unique_ptr<net::ZapAuthenticator>> StartZapIfSecure(const net::ZmqContext* ctx,
                                                                        const net::JobKeys& keys,
                                                                        MetricsRegistry* metrics);

}  // namespace towerps::cmd

#endif  // TOWERPS_CMD_CURVE_FLAGS_H_
