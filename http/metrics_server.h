// MetricsServer: serves a process's MetricsRegistry over HTTP for Prometheus, through
// Debian's cpp-httplib (libcpp-httplib-dev), so no HTTP parsing lives in towerps.
//
//   GET /metrics  -> 200, the registry in the text format 0.0.4 (common/prometheus_text.h)
//   GET /healthz  -> 200 "ok\n"
//   HEAD of either as GET without a body; another method on them -> 405 (Allow: GET, HEAD);
//   any other path -> 404; more than max_headers headers -> 431; a request body -> 413.
// Header lines are bounded by cpp-httplib itself (8 KiB each, CPPHTTPLIB_HEADER_MAX_LENGTH
// in the Debian build) and every read and write by read/write_timeout_ms.
//
// Threads: "metrics-http" accepts connections; num_threads "metrics-http-w" threads
// serve them (a bounded queue between them: when every worker is busy, accepting
// waits). Create() starts them all; Stop() (idempotent, also the destructor) closes
// the listening socket, lets the workers finish the connections they hold (an idle
// one ends after keep_alive_timeout_s) and joins.
// Thread-safe.
#ifndef TOWERPS_HTTP_METRICS_SERVER_H_
#define TOWERPS_HTTP_METRICS_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/metrics.h"
#include "common/prometheus_text.h"
#include "http/listener.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace towerps::http {

// The body of GET /metrics: refreshes towerps_process_resident_memory_bytes in
// `registry`, then renders it in the text format 0.0.4 with `target`'s labels.
std::string ScrapeMetrics(MetricsRegistry* registry, const PrometheusTarget& target);

struct MetricsServerOptions {
  // IPv4 address to listen on: the process's NodeAddress::bind_host (net/address.h),
  // so /metrics is reachable exactly where its other sockets are. Default 127.0.0.1.
  std::string host = "127.0.0.1";
  // Port, 0..65535; 0 = any free port (port() says which). Default 0.
  int port = 0;
  // Threads serving connections, 1..16. Default 2 (a scrape is a few KiB; one
  // Prometheus plus a curl).
  int num_threads = 2;
  // Connections accepted but not yet served, 1..1024. Default 16.
  int max_pending = 16;
  // Most request headers accepted, 1..1000; more -> 431. Default 64.
  int max_headers = 64;
  // Per read and per write on a connection, milliseconds, 1..600000. Default 5000.
  int64_t read_timeout_ms = 5000;
  int64_t write_timeout_ms = 5000;
  // How long an open connection may wait for its next request, seconds, 1..600
  // (cpp-httplib counts it in whole seconds). Default 5.
  int keep_alive_timeout_s = 5;
  // Labels of every exported series.
  PrometheusTarget target;

  // InvalidArgument for a host that is not an IPv4 address, or a field out of range.
  absl::Status Validate() const;
  // The listening part ("metrics" threads).
  ListenerOptions Listen() const;
};

class MetricsServer {
 public:
  // Validates, binds host:port and starts serving `registry` (borrowed: must outlive
  // the server). Errors: InvalidArgument (options), Unavailable (cannot bind: port in
  // use, address not local).
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Create(const MetricsServerOptions& options,
                                                               MetricsRegistry* registry);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // The bound port (the chosen one when options.port was 0).
  int port() const { return port_; }
  // Stops accepting, finishes the connections being served, joins every thread.
  // Idempotent; blocks at most about keep_alive_timeout_s + read_timeout_ms +
  // write_timeout_ms (a connection that sends nothing holds its worker that long).
  void Stop();

 private:
  MetricsServer(const MetricsServerOptions& options, MetricsRegistry* registry)
      : options_(options), registry_(registry) {}
  void Route(httplib::Server* svr);

  // Constant after Create().
  const MetricsServerOptions options_;
  MetricsRegistry* const registry_;
  std::unique_ptr<Listener> listener_;
  int port_ = 0;
};

}  // namespace towerps::http

#endif  // TOWERPS_HTTP_METRICS_SERVER_H_
