// TopKServer: `towerps serve --http_port`'s HTTP/JSON API (topk_api.h) on Debian's
// cpp-httplib, plus GET /metrics (the process's registry, as MetricsServer serves it)
// on the same port:
//
//   GET /v1/topk, POST /v1/topk, GET /healthz, GET /metrics
//   another method on them -> 405 (Allow); any other path -> 404; a body over
//   max_body_bytes -> 413; a request line over 8 KiB -> 414 (cpp-httplib's bound);
//   more than max_headers headers -> 431; a throwing handler -> 500.
// Every error body is JSON ({"error":{"code","message"}}); the server keeps serving.
//
// Threads (listener.h): "topk-http" accepts, num_threads "topk-http-w" serve one
// connection each (handlers run there and call RetrievalService::Search).
// Counts towerps_serve_http_requests_total, towerps_serve_http_errors_total (4xx and
// 5xx) and the histogram towerps_serve_http_latency_us in the registry.
// Thread-safe.
#ifndef TOWERPS_HTTP_TOPK_SERVER_H_
#define TOWERPS_HTTP_TOPK_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/metrics.h"
#include "common/prometheus_text.h"
#include "http/listener.h"
#include "http/topk_api.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace towerps::http {

struct TopKServerOptions {
  // host, port (0: any free port), num_threads (1..256, default 4: handler threads
  // that search), max_pending, timeouts and keep_alive_timeout_s; name is "topk".
  ListenerOptions listen;
  // Largest request body, bytes, 1..64 MiB; more -> 413. Default 1 MiB.
  int64_t max_body_bytes = 1 << 20;
  // Most request headers accepted, 1..1000; more -> 431. Default 64.
  int max_headers = 64;
  // Labels of GET /metrics.
  PrometheusTarget target;

  TopKServerOptions();
  // InvalidArgument for a field out of range.
  absl::Status Validate() const;
};

class TopKServer {
 public:
  // Validates, binds and serves `api` and `registry` (both borrowed: they must
  // outlive the server). Errors: InvalidArgument (options), Unavailable (cannot bind).
  static absl::StatusOr<std::unique_ptr<TopKServer>> Create(const TopKServerOptions& options,
                                                            const TopKApi* api,
                                                            MetricsRegistry* registry);
  ~TopKServer();
  TopKServer(const TopKServer&) = delete;
  TopKServer& operator=(const TopKServer&) = delete;

  // The bound port.
  int port() const { return port_; }
  // Listener::Stop: idempotent, joins.
  void Stop();

 private:
  TopKServer(const TopKServerOptions& options, const TopKApi* api, MetricsRegistry* registry);
  void Route(httplib::Server* svr);

  // Constant after Create().
  const TopKServerOptions options_;
  const TopKApi* const api_;
  MetricsRegistry* const registry_;
  Counter* const requests_;
  Counter* const errors_;
  Histogram* const latency_us_;
  std::unique_ptr<Listener> listener_;
  int port_ = 0;
};

}  // namespace towerps::http

#endif  // TOWERPS_HTTP_TOPK_SERVER_H_
