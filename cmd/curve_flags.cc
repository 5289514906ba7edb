#include "cmd/curve_flags.h"

#include "absl/strings/str_cat.h"

DEFINE_string(curve_dir, "",
              "directory of the job's CURVE keys (towerps keygen): encrypt and authenticate "
              "every connection; empty = insecure mode, for a trusted single-user machine "
              "(docs/security.md)");

namespace towerps::cmd {

absl::StatusOr<net::JobKeys> CurveKeysFromFlags(const std::string& identity) {
  if (FLAGS_curve_dir.empty()) return net::JobKeys();
  return net::LoadJobKeys(FLAGS_curve_dir, identity);
}

absl::Status RequireRankWithCurve(int rank, const char* rank_flag) {
  if (FLAGS_curve_dir.empty() || rank >= 0) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("--curve_dir needs an explicit ", rank_flag,
                                                 " (its key names the rank), not -1"));
}

absl::StatusOr<std::unique_ptr<net::ZapAuthenticator>> StartZapIfSecure(const net::ZmqContext* ctx,
                                                                        const net::JobKeys& keys,
                                                                        MetricsRegistry* metrics) {
  if (!keys.enabled()) return std::unique_ptr<net::ZapAuthenticator>();
  return net::ZapAuthenticator::Start(ctx, keys.allowed, metrics);
}

}  // namespace towerps::cmd
