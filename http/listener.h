// Listener: what every towerps HTTP server shares on top of Debian's cpp-httplib -
// the bound address, named threads fed through a bounded queue, timeouts, the
// keep-alive bound, SO_REUSEADDR only, and an idempotent Stop() that joins.
// MetricsServer (metrics_server.h) and TopKServer (topk_server.h) each route an
// httplib::Server and hand it to Listener::Start.
//
// Threads: "<name>-http" accepts connections (listen_after_bind); num_threads
// "<name>-http-w" serve one connection each at a time (a bounded queue of
// max_pending between them: when every worker is busy, accepting waits). Stop()
// closes the listening socket, lets the workers finish the connections they hold
// (an idle one ends after keep_alive_timeout_s) and joins.
// Thread-safe.
#ifndef TOWERPS_HTTP_LISTENER_H_
#define TOWERPS_HTTP_LISTENER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace towerps::http {

struct ListenerOptions {
  // Names the threads ("<name>-http", "<name>-http-w": at most 8 characters) and
  // prefixes errors and logs. Default "metrics".
  std::string name = "metrics";
  // IPv4 address to listen on (the process's other sockets' bind host). Default 127.0.0.1.
  std::string host = "127.0.0.1";
  // Port, 0..65535; 0 = any free port (Listener::port() says which). Default 0.
  int port = 0;
  // Threads serving connections, 1..max_threads. Default 2.
  int num_threads = 2;
  // Upper bound of num_threads that Validate() accepts. Default 16.
  int max_threads = 16;
  // Connections accepted but not yet served, 1..1024. Default 16.
  int max_pending = 16;
  // Per read and per write on a connection, milliseconds, 1..600000. Default 5000.
  int64_t read_timeout_ms = 5000;
  int64_t write_timeout_ms = 5000;
  // How long an open connection may wait for its next request, seconds, 1..600
  // (cpp-httplib counts it in whole seconds). Default 5.
  int keep_alive_timeout_s = 5;
  // Requests served on one connection before the server closes it, 1..1000000: a
  // waiting connection gets a worker after at most this many requests of another
  // (one worker per connection), and a client reconnects this rarely (cpp-httplib's
  // default, 5, made closed-loop clients reconnect all the time: with its accept
  // backlog of 5, a burst of reconnections waited the 1 s SYN retransmission).
  // Default 100.
  int keep_alive_max_requests = 100;

  // InvalidArgument for a name too long for a thread name, a host that is not an
  // IPv4 address, or a field out of range.
  absl::Status Validate() const;
};

class Listener {
 public:
  // Validates, sets the threads, timeouts and socket options of `server` (already
  // routed; owned from now on), binds host:port and starts accepting. Errors:
  // InvalidArgument (options), Unavailable (cannot bind: port in use, address not
  // local).
  static absl::StatusOr<std::unique_ptr<Listener>> Start(const ListenerOptions& options,
                                                         std::unique_ptr<httplib::Server> server);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // The bound port (the chosen one when options.port was 0).
  int port() const { return port_; }
  // Stops accepting, finishes the connections being served, joins every thread.
  // Idempotent; blocks at most about keep_alive_timeout_s + read_timeout_ms +
  // write_timeout_ms (a connection that sends nothing holds its worker that long).
  void Stop();

 private:
  Listener(const ListenerOptions& options, std::unique_ptr<httplib::Server> server);

  // Constant after Start().
  const ListenerOptions options_;
  std::unique_ptr<httplib::Server> server_;
  int port_ = 0;

  std::thread listen_thread_;
  absl::Notification listen_done_;
  absl::Notification stopped_;
  absl::Mutex stop_mu_;  // serialises Stop()
};

}  // namespace towerps::http

#endif  // TOWERPS_HTTP_LISTENER_H_
