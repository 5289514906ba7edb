#include "http/topk_server.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "http/metrics_server.h"
#include "httplib.h"

namespace towerps::http {
namespace {

constexpr char kJson[] = "application/json";

void Reply(const HttpReply& reply, httplib::Response* res) {
  res->status = reply.status;
  res->set_content(reply.body, kJson);
}

// The JSON error of a status cpp-httplib set itself (404, 413, 414, 400...).
absl::Status StatusOfHttp(int http_status) {
  switch (http_status) {
    case 404:
      return absl::NotFoundError("no such path (GET/POST /v1/topk, GET /healthz, GET /metrics)");
    case 405:
      return absl::InvalidArgumentError("method not allowed");
    case 413:
      return absl::InvalidArgumentError("request body too large");
    case 414:
      return absl::InvalidArgumentError("request URI too long");
    case 431:
      return absl::InvalidArgumentError("too many request headers");
    default:
      if (http_status < 500) return absl::InvalidArgumentError("malformed HTTP request");
      return absl::InternalError("internal error");
  }
}

}  // namespace

TopKServerOptions::TopKServerOptions() {
  listen.name = "topk";
  listen.num_threads = 4;
  listen.max_threads = 256;
  listen.max_pending = 64;
}

absl::Status TopKServerOptions::Validate() const {
  if (absl::Status s = listen.Validate(); !s.ok()) return s;
  if (max_body_bytes < 1 || max_body_bytes > (int64_t{64} << 20)) {
    return absl::InvalidArgumentError(
        absl::StrCat("topk max_body_bytes must be in [1, 67108864], got ", max_body_bytes));
  }
  if (max_headers < 1 || max_headers > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("topk max_headers must be in [1, 1000], got ", max_headers));
  }
  if (target.role.empty()) return absl::InvalidArgumentError("topk metrics role is empty");
  return absl::OkStatus();
}

TopKServer::TopKServer(const TopKServerOptions& options, const TopKApi* api,
                       MetricsRegistry* registry)
    : options_(options),
      api_(api),
      registry_(registry),
      requests_(registry->GetCounter("towerps_serve_http_requests_total")),
      errors_(registry->GetCounter("towerps_serve_http_errors_total")),
      latency_us_(registry->GetHistogram("towerps_serve_http_latency_us")) {}

absl::StatusOr<std::unique_ptr<TopKServer>> TopKServer::Create(const TopKServerOptions& options,
                                                               const TopKApi* api,
                                                               MetricsRegistry* registry) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  std::unique_ptr<TopKServer> server(new TopKServer(options, api, registry));
  auto svr = std::make_unique<httplib::Server>();
  server->Route(svr.get());
  auto listener = Listener::Start(options.listen, std::move(svr));
  if (!listener.ok()) return listener.status();
  server->listener_ = *std::move(listener);
  server->port_ = server->listener_->port();
  LOG(INFO) << "serve: HTTP API on http://" << options.listen.host << ":" << server->port_
            << "/v1/topk";
  return server;
}

void TopKServer::Route(httplib::Server* server) {
  httplib::Server& svr = *server;
  svr.set_payload_max_length(static_cast<size_t>(options_.max_body_bytes));
  const size_t max_headers = static_cast<size_t>(options_.max_headers);
  svr.set_pre_routing_handler([max_headers](const httplib::Request& req, httplib::Response& res) {
    if (req.headers.size() > max_headers) {
      res.status = 431;
      return httplib::Server::HandlerResponse::Handled;  // the error handler writes the body
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  // The TopK handlers, timed into towerps_serve_http_latency_us.
  auto timed = [this](HttpReply (*answer)(const TopKApi&, const httplib::Request&)) {
    return [this, answer](const httplib::Request& req, httplib::Response& res) {
      const auto start = std::chrono::steady_clock::now();
      Reply(answer(*api_, req), &res);
      latency_us_->Record(
          std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
              .count());
    };
  };
  svr.Get("/v1/topk", timed([](const TopKApi& api, const httplib::Request& req) {
            return api.Get(req.params);
          }));
  svr.Post("/v1/topk", timed([](const TopKApi& api, const httplib::Request& req) {
             return api.Post(req.body);
           }));
  svr.Get("/healthz",
          [this](const httplib::Request&, httplib::Response& res) { Reply(api_->Health(), &res); });
  svr.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(ScrapeMetrics(registry_, options_.target), kPrometheusTextContentType);
  });
  struct Allowed {
    const char* path;
    const char* allow;
  };
  for (const Allowed& a : {Allowed{"/v1/topk", "GET, HEAD, POST"}, Allowed{"/healthz", "GET, HEAD"},
                           Allowed{"/metrics", "GET, HEAD"}}) {
    const std::string allow = a.allow;
    auto not_allowed = [allow](const httplib::Request&, httplib::Response& res) {
      res.status = 405;
      res.set_header("Allow", allow);
    };
    if (std::string(a.path) != "/v1/topk") svr.Post(a.path, not_allowed);
    svr.Put(a.path, not_allowed);
    svr.Patch(a.path, not_allowed);
    svr.Delete(a.path, not_allowed);
    svr.Options(a.path, not_allowed);
  }
  // Every status >= 400 without a body (cpp-httplib's own: 400, 404, 413, 414; ours:
  // 405, 431, 500) gets a JSON one.
  svr.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty()) {
      HttpReply reply = ErrorReply(StatusOfHttp(res.status), res.status);
      res.set_content(reply.body, kJson);
    }
  });
  // A handler that throws answers 500 instead of killing the process.
  svr.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        res.status = 500;
        res.body.clear();
      });
  // Counted before the reply is written (cpp-httplib's logger runs after it), so a client
  // that has its answer sees it counted.
  svr.set_post_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    requests_->Increment();
    if (res.status >= 400) {
      errors_->Increment();
      LOG_EVERY_N(WARNING, 1000) << "serve: HTTP " << res.status << " for " << req.method
                                 << " (every 1000th error logged)";
    }
  });
}

void TopKServer::Stop() {
  if (listener_ != nullptr) listener_->Stop();
}

TopKServer::~TopKServer() { Stop(); }

}  // namespace towerps::http
