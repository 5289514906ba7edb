#include "http/listener.h"

#include <pthread.h>
#include <sys/socket.h>

#include <functional>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/bounded_queue.h"
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
  WorkerPool(const std::string& thread_name, int num_threads, int capacity)
      : queue_(static_cast<size_t>(capacity)) {
    for (int i = 0; i < num_threads; ++i) {
      threads_.emplace_back([this, thread_name] {
        pthread_setname_np(pthread_self(), thread_name.c_str());
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

}  // namespace

absl::Status ListenerOptions::Validate() const {
  // "<name>-http-w" must fit a 15-character thread name.
  if (name.empty() || name.size() > 8) {
    return absl::InvalidArgumentError(
        absl::StrCat("http server name must be 1..8 characters, got \"", name, "\""));
  }
  if (!net::IsIPv4Address(host)) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " host must be an IPv4 address, got \"", host, "\""));
  }
  auto range = [this](const char* field, int64_t v, int64_t lo, int64_t hi) {
    if (v < lo || v > hi) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, " ", field, " must be in [", lo, ", ", hi, "], got ", v));
    }
    return absl::OkStatus();
  };
  for (absl::Status s :
       {range("port", port, 0, 65535), range("num_threads", num_threads, 1, max_threads),
        range("max_pending", max_pending, 1, 1024),
        range("read_timeout_ms", read_timeout_ms, 1, 600000),
        range("write_timeout_ms", write_timeout_ms, 1, 600000),
        range("keep_alive_timeout_s", keep_alive_timeout_s, 1, 600),
        range("keep_alive_max_requests", keep_alive_max_requests, 1, 1000000)}) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

Listener::Listener(const ListenerOptions& options, std::unique_ptr<httplib::Server> server)
    : options_(options), server_(std::move(server)) {}

absl::StatusOr<std::unique_ptr<Listener>> Listener::Start(const ListenerOptions& options,
                                                          std::unique_ptr<httplib::Server> server) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  std::unique_ptr<Listener> listener(new Listener(options, std::move(server)));
  httplib::Server& svr = *listener->server_;
  const std::string worker_name = options.name + "-http-w";
  const int threads = options.num_threads;
  const int pending = options.max_pending;
  svr.new_task_queue = [worker_name, threads, pending] {
    return new WorkerPool(worker_name, threads, pending);
  };
  svr.set_read_timeout(options.read_timeout_ms / 1000, (options.read_timeout_ms % 1000) * 1000);
  svr.set_write_timeout(options.write_timeout_ms / 1000, (options.write_timeout_ms % 1000) * 1000);
  svr.set_keep_alive_timeout(options.keep_alive_timeout_s);
  svr.set_keep_alive_max_count(static_cast<size_t>(options.keep_alive_max_requests));
  // A reply is written as headers then body: without TCP_NODELAY, Nagle holds the
  // body until the peer's delayed ACK (~40 ms per request on Linux).
  svr.set_tcp_nodelay(true);
  // cpp-httplib's default adds SO_REUSEPORT, which would let a second process share
  // (and silently split) a port already in use: SO_REUSEADDR only, like ZeroMQ's.
  svr.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  if (options.port == 0) {
    listener->port_ = svr.bind_to_any_port(options.host);
    if (listener->port_ <= 0) {
      return absl::UnavailableError(
          absl::StrCat(options.name, ": cannot bind ", options.host, ":0"));
    }
  } else {
    if (!svr.bind_to_port(options.host, options.port)) {
      return absl::UnavailableError(absl::StrCat(options.name, ": cannot bind ", options.host, ":",
                                                 options.port,
                                                 " (in use, or not a local address)"));
    }
    listener->port_ = options.port;
  }
  Listener* self = listener.get();
  const std::string accept_name = options.name + "-http";
  listener->listen_thread_ = std::thread([self, accept_name] {
    pthread_setname_np(pthread_self(), accept_name.c_str());
    if (!self->server_->listen_after_bind() && !self->stopped_.HasBeenNotified()) {
      LOG(ERROR) << self->options_.name << ": the HTTP accept loop ended on an error";
    }
    self->listen_done_.Notify();
  });
  return listener;
}

void Listener::Stop() {
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

Listener::~Listener() { Stop(); }

}  // namespace towerps::http
