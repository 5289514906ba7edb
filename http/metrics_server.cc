#include "http/metrics_server.h"

#include "absl/strings/str_cat.h"
#include "common/process_metrics.h"
#include "glog/logging.h"
#include "httplib.h"

namespace towerps::http {
namespace {

constexpr char kAllow[] = "GET, HEAD";

}  // namespace

std::string ScrapeMetrics(MetricsRegistry* registry, const PrometheusTarget& target) {
  UpdateProcessMetrics(registry);
  return RenderPrometheusText(registry, target);
}

ListenerOptions MetricsServerOptions::Listen() const {
  ListenerOptions listen;
  listen.name = "metrics";
  listen.host = host;
  listen.port = port;
  listen.num_threads = num_threads;
  listen.max_threads = 16;
  listen.max_pending = max_pending;
  listen.read_timeout_ms = read_timeout_ms;
  listen.write_timeout_ms = write_timeout_ms;
  listen.keep_alive_timeout_s = keep_alive_timeout_s;
  return listen;
}

absl::Status MetricsServerOptions::Validate() const {
  if (absl::Status s = Listen().Validate(); !s.ok()) return s;
  if (max_headers < 1 || max_headers > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics max_headers must be in [1, 1000], got ", max_headers));
  }
  if (target.role.empty()) return absl::InvalidArgumentError("metrics role is empty");
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Create(
    const MetricsServerOptions& options, MetricsRegistry* registry) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  std::unique_ptr<MetricsServer> server(new MetricsServer(options, registry));
  auto svr = std::make_unique<httplib::Server>();
  server->Route(svr.get());
  auto listener = Listener::Start(options.Listen(), std::move(svr));
  if (!listener.ok()) return listener.status();
  server->listener_ = *std::move(listener);
  server->port_ = server->listener_->port();
  LOG(INFO) << "metrics: serving http://" << options.host << ":" << server->port_ << "/metrics";
  return server;
}

void MetricsServer::Route(httplib::Server* server) {
  httplib::Server& svr = *server;
  svr.set_payload_max_length(0);
  const size_t max_headers = static_cast<size_t>(options_.max_headers);
  svr.set_pre_routing_handler([max_headers](const httplib::Request& req, httplib::Response& res) {
    if (req.headers.size() > max_headers) {
      res.status = 431;
      res.set_content("too many headers\n", "text/plain");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (!req.body.empty()) {
      res.status = 413;
      res.set_content("no body expected\n", "text/plain");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  svr.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(ScrapeMetrics(registry_, options_.target), kPrometheusTextContentType);
  });
  svr.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  auto not_allowed = [](const httplib::Request&, httplib::Response& res) {
    res.status = 405;
    res.set_header("Allow", kAllow);
    res.set_content("method not allowed\n", "text/plain");
  };
  for (const char* path : {"/metrics", "/healthz"}) {
    svr.Post(path, not_allowed);
    svr.Put(path, not_allowed);
    svr.Patch(path, not_allowed);
    svr.Delete(path, not_allowed);
    svr.Options(path, not_allowed);
  }
  svr.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty()) res.set_content(absl::StrCat(res.status, "\n"), "text/plain");
  });
  // A handler that throws answers 500 instead of killing the process.
  svr.set_exception_handler([](const httplib::Request&, httplib::Response& res,
                               std::exception_ptr) { res.status = 500; });
}

void MetricsServer::Stop() {
  if (listener_ != nullptr) listener_->Stop();
}

MetricsServer::~MetricsServer() { Stop(); }

}  // namespace towerps::http
