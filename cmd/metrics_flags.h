// --metrics_port: the Prometheus endpoint (http/metrics_server.h) of the long-running
// processes (`towerps scheduler`, `ps`, `worker`, `serve`; "cmd/metrics_flags.cc" in
// their flag files). Off by default (0): the processes of a job share hosts (deploy/
// local.sh runs them all on one), so one fixed default port would collide; a launcher
// that wants scraping gives each process its own port.
#ifndef TOWERPS_CMD_METRICS_FLAGS_H_
#define TOWERPS_CMD_METRICS_FLAGS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/metrics.h"
#include "gflags/gflags.h"
#include "http/metrics_server.h"

DECLARE_int32(metrics_port);

namespace towerps::cmd {

// With --metrics_port > 0: serves `registry` (borrowed; outlives the server) at
// http://<bind_host>:<--metrics_port>/metrics with the labels role and rank. bind_host
// is the address the process's other sockets listen on (net::NodeAddress::bind_host,
// or serve's bound endpoint), so the endpoint is reachable exactly where they are.
// Returns null with --metrics_port=0. Errors: MetricsServer::Create's (InvalidArgument
// for a port out of range, Unavailable when it cannot bind).
absl::StatusOr<std::unique_ptr<http::MetricsServer>> StartMetricsServerFromFlags(
    const char* role, int rank, const std::string& bind_host, MetricsRegistry* registry);

}  // namespace towerps::cmd

#endif  // TOWERPS_CMD_METRICS_FLAGS_H_
