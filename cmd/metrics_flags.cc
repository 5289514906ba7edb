#include "cmd/metrics_flags.h"

#include "absl/strings/str_cat.h"

DEFINE_int32(metrics_port, 0,
             "serve Prometheus metrics at http://<bind address>:<port>/metrics (and "
             "/healthz); 0 = off. The bind address is the one of the process's other "
             "sockets (--host; serve: --serve_bind)");

namespace towerps::cmd {

absl::StatusOr<std::unique_ptr<http::MetricsServer>> StartMetricsServerFromFlags(
    const char* role, int rank, const std::string& bind_host, MetricsRegistry* registry) {
  if (FLAGS_metrics_port == 0) return std::unique_ptr<http::MetricsServer>();
  http::MetricsServerOptions options;
  options.host = bind_host;
  options.port = FLAGS_metrics_port;
  options.target = {role, rank};
  if (options.port < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--metrics_port must be 0 (off) or 1..65535, got ", FLAGS_metrics_port));
  }
  return http::MetricsServer::Create(options, registry);
}

}  // namespace towerps::cmd
