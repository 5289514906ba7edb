// The ZeroMQ transport: request/reply RPC over DEALER -> ROUTER with request ids,
// deadlines and retries (ps-lite's layering without its singletons).
//
// RpcServer owns a ROUTER socket on its io thread and a pool of handler threads (or
// none: then the io thread serves inline); a handler turns one decoded request into
// one reply frame (or an error Status, sent as an error reply; an exception that
// escapes it is caught, counted and sent as Internal). A malformed frame never reaches
// a handler: it gets an error reply and the server keeps serving.
//
// RpcClient owns one DEALER socket and is used by one thread. Requests carry ids;
// Send() puts a request in flight, Wait()/WaitAll() collect replies, resending a
// request whose deadline passed (same id, so replies can be matched; the receiver
// must make a resent request safe: pulls are idempotent, pushes carry
// (client id, sequence) and are applied once).
#ifndef TOWERPS_NET_TRANSPORT_H_
#define TOWERPS_NET_TRANSPORT_H_

#include <zmq.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/bounded_queue.h"
#include "common/cancellation.h"
#include "common/metrics.h"
#include "net/codec.h"
#include "net/peer.h"

namespace towerps::net {

// One received ZeroMQ frame; owns its bytes without copying them. Move-only.
class Frame {
 public:
  Frame();
  ~Frame();
  Frame(Frame&& other) noexcept;
  Frame& operator=(Frame&& other) noexcept;
  Frame(const Frame&) = delete;
  Frame& operator=(const Frame&) = delete;

  const char* data() const;
  size_t size() const;
  absl::string_view view() const { return absl::string_view(data(), size()); }
  zmq_msg_t* raw() { return &msg_; }
  // A metadata property of a received frame ("User-Id"); empty when it has none.
  std::string Property(const char* name) const;

 private:
  zmq_msg_t msg_;
};

// A decoded message together with the frame its reader points into.
struct Message {
  Frame frame;
  std::unique_ptr<DecodedEnvelope> decoded;
  wire::Envelope::Reader envelope() const { return decoded->envelope(); }
};

// Owns the process's one zmq context (STYLE.md: made in main, passed in).
class ZmqContext {
 public:
  ZmqContext();
  ~ZmqContext();
  ZmqContext(const ZmqContext&) = delete;
  ZmqContext& operator=(const ZmqContext&) = delete;
  void* get() const { return ctx_; }
  // "inproc://<prefix>-<n>", never returned twice by this context, so an inproc
  // endpoint is never bound twice (a freed server's name may still be bound while
  // libzmq closes its socket). Thread-safe.
  std::string UniqueInprocEndpoint(absl::string_view prefix) const;

 private:
  void* ctx_;
  mutable std::atomic<uint64_t> next_inproc_id_{0};
};

// CURVE keys (Z85 text, 40 characters each). Empty public/secret keys = no encryption.
struct CurveKeys {
  std::string public_key;
  std::string secret_key;
  // For clients: the server's public key. For servers: unused.
  std::string server_public_key;
  bool enabled() const { return !secret_key.empty(); }
};

// Generates a fresh CURVE key pair (Z85). Errors: Unimplemented if libzmq lacks CURVE.
absl::StatusOr<CurveKeys> GenerateCurveKeys();

struct RpcServerOptions {
  // ZeroMQ endpoint to bind; port 0 picks a free port (see RpcServer::endpoint()).
  std::string bind_endpoint = "tcp://127.0.0.1:0";
  // Threads that run the handler. 0: the io thread runs it inline, one request at a
  // time, with no hand-off between threads (fewest context switches per request: the
  // better choice when cores are scarce or requests are cheap).
  int handler_threads = 2;
  // Requests queued between the io thread and the handlers; backpressure beyond it.
  size_t queue_capacity = 1024;
  // Name used in logs and thread names ("ps/0", "scheduler").
  std::string name = "server";
  CodecOptions codec;
  // When enabled, the socket is a CURVE server: traffic is encrypted, and every
  // connection must pass the context's ZapAuthenticator (ZMQ_ZAP_DOMAIN is set); a
  // request without an authenticated identity (no ZAP handler) is refused.
  CurveKeys curve;

  absl::Status Validate() const;
};

class RpcServer {
 public:
  // Runs on a handler thread; returns the reply frame (built with InitEnvelope and
  // the request's id) or an error that is sent back as an error reply. `peer` is the
  // sender's authenticated identity (empty when CURVE is off); a handler refuses
  // what the peer may not do with PermissionDenied (counted and logged here).
  using Handler =
      std::function<absl::StatusOr<std::string>(const Peer& peer, const wire::Envelope::Reader&)>;

  // Binds and starts the threads. Errors: InvalidArgument for bad options,
  // Unavailable when the endpoint cannot be bound. `ctx` and `metrics` are borrowed
  // (metrics may be null) and must outlive the server.
  static absl::StatusOr<std::unique_ptr<RpcServer>> Start(const ZmqContext* ctx,
                                                           const RpcServerOptions& options,
                                                           Handler handler,
                                                           MetricsRegistry* metrics);
  ~RpcServer();

  // The bound endpoint with the real port, e.g. "tcp://127.0.0.1:40123".
  const std::string& endpoint() const { return endpoint_; }
  // Stops accepting, finishes queued requests, joins every thread. Idempotent.
  void Stop();

 private:
  struct Incoming {
    Frame identity;
    Frame payload;
  };
  RpcServer(const RpcServerOptions& options, Handler handler, MetricsRegistry* metrics);
  void IoLoop();
  void HandlerLoop(int index);
  // Decodes one request, runs the handler, returns the reply (or error reply) frame.
  std::string Serve(const Frame& payload);
  // The handler's result; an exception escaping it becomes Internal (counted, logged).
  absl::StatusOr<std::string> RunHandler(const Peer& peer, const wire::Envelope::Reader& request);

  // Constant after construction.
  const RpcServerOptions options_;
  const Handler handler_;
  const ZmqContext* ctx_ = nullptr;
  std::string endpoint_;
  std::string reply_endpoint_;  // inproc endpoint handlers push replies to
  Counter* requests_ = nullptr;
  Counter* bad_requests_ = nullptr;
  Counter* denied_ = nullptr;
  Histogram* handle_us_ = nullptr;
  Counter* handler_exceptions_ = nullptr;

  // Only the io thread (after Start returns).
  void* router_ = nullptr;
  void* replies_ = nullptr;  // PULL side of the handler -> io inproc channel

  BoundedQueue<Incoming> queue_;
  std::atomic<bool> stopping_{false};
  std::thread io_thread_;
  std::vector<std::thread> handler_threads_;
};

struct RpcClientOptions {
  // Server endpoint, e.g. "tcp://127.0.0.1:40123".
  std::string endpoint;
  // IPv4 address the connection leaves from (ZeroMQ's "tcp://SRC:0;HOST:PORT"), so
  // that peers and `ss` see this node's own address (NodeAddress::source_host; not
  // 0.0.0.0). Empty: the system's choice. Ignored for a non-tcp endpoint.
  std::string source_host;
  // Per-attempt deadline, milliseconds; > 0.
  int64_t timeout_ms = 5000;
  // Attempts per request including the first; >= 1. Resends reuse the request id.
  int max_attempts = 3;
  // Wait before a resend, doubled each time, milliseconds.
  int64_t backoff_ms = 50;
  // Sender name written in envelopes ("worker/3").
  std::string name = "client";
  CodecOptions codec;
  CurveKeys curve;
  // Borrowed, may be null; must outlive the client. Once it is cancelled, every wait
  // of this client returns its reason within ~100 ms instead of waiting out
  // deadlines and retries (e.g. the job failed while a server is unreachable).
  const Cancellation* cancel = nullptr;

  absl::Status Validate() const;
};

// Thread-compatible: owned by one thread (its socket must not be shared).
class RpcClient {
 public:
  static absl::StatusOr<std::unique_ptr<RpcClient>> Connect(const ZmqContext* ctx,
                                                             const RpcClientOptions& options);
  ~RpcClient();

  // A fresh request id for an envelope this client will send.
  uint64_t NextRequestId() { return next_request_id_++; }
  const RpcClientOptions& options() const { return options_; }

  // Puts `frame` (an envelope carrying `request_id`) in flight. Does not block on
  // the network (ZeroMQ queues while disconnected). `retry`: resend on deadline.
  absl::Status Send(uint64_t request_id, std::string frame, bool retry);

  // Blocks until the reply to `request_id` arrives, resending on each deadline up to
  // max_attempts. Returns the reply, the Status of an error reply, DeadlineExceeded
  // after the last attempt, DataLoss for a malformed reply, or the reason of
  // options.cancel once it is cancelled.
  absl::StatusOr<Message> Wait(uint64_t request_id);

  // Send + Wait.
  absl::StatusOr<Message> Call(uint64_t request_id, std::string frame, bool retry);

  // Waits for many in-flight requests on many clients at once (parallel fan-out).
  // `requests[i]` = (client, request id); result i belongs to request i.
  static std::vector<absl::StatusOr<Message>> WaitAll(
      absl::Span<const std::pair<RpcClient*, uint64_t>> requests);

 private:
  struct Pending {
    std::shared_ptr<const std::string> frame;  // shared with the socket: no copy per send
    bool retry = false;
    int attempts = 0;
    int64_t deadline_us = 0;
    std::unique_ptr<absl::StatusOr<Message>> result;  // set when done
  };
  explicit RpcClient(const RpcClientOptions& options);
  absl::Status Transmit(Pending* pending);
  // Receives every reply waiting on the socket without blocking.
  void DrainSocket();
  // Resends or fails requests whose deadline passed.
  void ExpireDeadlines(int64_t now_us);
  absl::StatusOr<Message> TakeResult(uint64_t request_id);
  // Fails every request still waiting with `reason` (options_.cancel fired).
  void CancelPending(const absl::Status& reason);

  const RpcClientOptions options_;
  void* socket_ = nullptr;
  uint64_t next_request_id_ = 1;
  std::map<uint64_t, Pending> pending_;
};

}  // namespace towerps::net

#endif  // TOWERPS_NET_TRANSPORT_H_
