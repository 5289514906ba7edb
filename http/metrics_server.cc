#include "http/metrics_server.h"

#include <pthread.h>
#include <sys/socket.h>

#include <functional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/bounded_queue.h"
#include "common/process_metrics.h"
#include "glog/logging.h"
#include "httplib.h"
#include "net/address.h"

namespace towerps::http {
namespace {

// cpp-httplib's task queue, with named threads and a bounded queue (its own
// ThreadPool has neither). Owned by the httplib::Server, which calls shutdown() when
// its accept loop ends.
class WorkerPool : public httplib::TaskQueue {
 public:
  WorkerPool(int num_threads, int capacity) : queue_(static_cast<size_t>(capacity)) {
    for (int i = 0; i < num_threads; ++i) {
      threads_.emplace_back([this] {
        pthread_setname_np(pthread_self(), "metrics-http-w");
        while (std::optional<std::function<void()>> task = queue_.Pop()) (*task)();
      });
    }
  }
  ~WorkerPool() override { shutdown(); }

  // Blocks while the queue is full. The task owns an accepted socket: after a
  // shutdown it runs here rather than leak it.
  void enqueue(std::function<void()> fn) override {
    if (!queue_.Push(fn)) fn();
  }

  void shutdown() override {
    queue_.Close();
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

 private:
  BoundedQueue<std::function<void()>> queue_;
  std::vector<std::thread> threads_;
};

constexpr char kAllow[] = "GET, HEAD";

}  // namespace

absl::Status MetricsServerOptions::Validate() const {
  if (!net::IsIPv4Address(host)) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics host must be an IPv4 address, got \"", host, "\""));
  }
  auto range = [](const char* name, int64_t v, int64_t lo, int64_t hi) {
    if (v < lo || v > hi) {
      return absl::InvalidArgumentError(
          absl::StrCat("metrics ", name, " must be in [", lo, ", ", hi, "], got ", v));
    }
    return absl::OkStatus();
  };
  for (absl::Status s :
       {range("port", port, 0, 65535), range("num_threads", num_threads, 1, 16),
        range("max_pending", max_pending, 1, 1024), range("max_headers", max_headers, 1, 1000),
        range("read_timeout_ms", read_timeout_ms, 1, 600000),
        range("write_timeout_ms", write_timeout_ms, 1, 600000),
        range("keep_alive_timeout_s", keep_alive_timeout_s, 1, 600)}) {
    if (!s.ok()) return s;
  }
  if (target.role.empty()) return absl::InvalidArgumentError("metrics role is empty");
  return absl::OkStatus();
}

MetricsServer::MetricsServer(const MetricsServerOptions& options, MetricsRegistry* registry)
    : options_(options), registry_(registry), server_(std::make_unique<httplib::Server>()) {}

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Create(
    const MetricsServerOptions& options, MetricsRegistry* registry) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  std::unique_ptr<MetricsServer> server(new MetricsServer(options, registry));
  server->Route();
  httplib::Server& svr = *server->server_;
  if (options.port == 0) {
    server->port_ = svr.bind_to_any_port(options.host);
    if (server->port_ <= 0) {
      return absl::UnavailableError(absl::StrCat("metrics: cannot bind ", options.host, ":0"));
    }
  } else {
    if (!svr.bind_to_port(options.host, options.port)) {
      return absl::UnavailableError(absl::StrCat("metrics: cannot bind ", options.host, ":",
                                                 options.port,
                                                 " (in use, or not a local address)"));
    }
    server->port_ = options.port;
  }
  MetricsServer* self = server.get();
  server->listen_thread_ = std::thread([self] {
    pthread_setname_np(pthread_self(), "metrics-http");
    if (!self->server_->listen_after_bind() && !self->stopped_.HasBeenNotified()) {
      LOG(ERROR) << "metrics: the HTTP accept loop ended on an error";
    }
    self->listen_done_.Notify();
  });
  LOG(INFO) << "metrics: serving http://" << options.host << ":" << server->port_ << "/metrics";
  return server;
}

void MetricsServer::Route() {
  httplib::Server& svr = *server_;
  const int threads = options_.num_threads;
  const int pending = options_.max_pending;
  svr.new_task_queue = [threads, pending] { return new WorkerPool(threads, pending); };
  svr.set_read_timeout(options_.read_timeout_ms / 1000, (options_.read_timeout_ms % 1000) * 1000);
  svr.set_write_timeout(options_.write_timeout_ms / 1000,
                        (options_.write_timeout_ms % 1000) * 1000);
  svr.set_keep_alive_timeout(options_.keep_alive_timeout_s);
  svr.set_payload_max_length(0);
  // cpp-httplib's default adds SO_REUSEPORT, which would let a second process share
  // (and silently split) a port already in use: SO_REUSEADDR only, like ZeroMQ's.
  svr.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
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
    UpdateProcessMetrics(registry_);
    res.set_content(RenderPrometheusText(registry_, options_.target), kPrometheusTextContentType);
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
  absl::MutexLock lock(&stop_mu_);
  if (stopped_.HasBeenNotified()) return;
  stopped_.Notify();
  if (!listen_thread_.joinable()) return;
  // stop() is a no-op until the accept loop has started: repeat until it has ended.
  do {
    server_->stop();
  } while (!listen_done_.WaitForNotificationWithTimeout(absl::Milliseconds(10)));
  listen_thread_.join();
}

MetricsServer::~MetricsServer() { Stop(); }

}  // namespace towerps::http
