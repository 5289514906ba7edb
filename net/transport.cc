#include "net/transport.h"

#include <pthread.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "kj/exception.h"
#include "common/status.h"
#include "glog/logging.h"
#include "net/address.h"
#include "net/zap_authenticator.h"

namespace towerps::net {
namespace {

constexpr int kPollIntervalMs = 50;
// A client with a Cancellation wakes at least this often to look at it.
constexpr int64_t kCancelPollMs = 100;

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

absl::Status ZmqError(absl::string_view what) {
  int err = zmq_errno();
  std::string message = absl::StrCat(what, ": ", zmq_strerror(err));
  if (err == EAGAIN || err == EHOSTUNREACH || err == ETERM) {
    return absl::UnavailableError(message);
  }
  if (err == EINVAL || err == EPROTONOSUPPORT || err == ENOCOMPATPROTO) {
    return absl::InvalidArgumentError(message);
  }
  if (err == EADDRINUSE || err == EADDRNOTAVAIL) return absl::UnavailableError(message);
  return absl::InternalError(message);
}

void SetInt(void* socket, int option, int value) {
  CHECK_EQ(zmq_setsockopt(socket, option, &value, sizeof(value)), 0) << zmq_strerror(zmq_errno());
}

absl::Status SetString(void* socket, int option, const std::string& value, absl::string_view what) {
  if (zmq_setsockopt(socket, option, value.c_str(), value.size()) != 0) return ZmqError(what);
  return absl::OkStatus();
}

// Sends `bytes` without copying: the message owns a shared reference to them.
absl::Status SendShared(void* socket, std::shared_ptr<const std::string> bytes, int flags) {
  zmq_msg_t msg;
  auto* holder = new std::shared_ptr<const std::string>(std::move(bytes));
  int rc = zmq_msg_init_data(
      &msg, const_cast<char*>((*holder)->data()), (*holder)->size(),
      [](void*, void* hint) { delete static_cast<std::shared_ptr<const std::string>*>(hint); },
      holder);
  CHECK_EQ(rc, 0);
  if (zmq_msg_send(&msg, socket, flags) < 0) {
    absl::Status status = ZmqError("send");
    zmq_msg_close(&msg);
    return status;
  }
  return absl::OkStatus();
}

absl::Status SendFrame(void* socket, Frame* frame, int flags) {
  if (zmq_msg_send(frame->raw(), socket, flags) < 0) return ZmqError("send");
  return absl::OkStatus();
}

absl::Status RecvFrame(void* socket, Frame* frame, int flags) {
  if (zmq_msg_recv(frame->raw(), socket, flags) < 0) return ZmqError("recv");
  return absl::OkStatus();
}

bool MoreFrames(void* socket) {
  int more = 0;
  size_t size = sizeof(more);
  zmq_getsockopt(socket, ZMQ_RCVMORE, &more, &size);
  return more != 0;
}

void NameThread(absl::string_view name) {
  std::string truncated(name.substr(0, 15));
  pthread_setname_np(pthread_self(), truncated.c_str());
}

absl::Status ApplyCurve(void* socket, const CurveKeys& keys, bool server) {
  if (!keys.enabled()) return absl::OkStatus();
  if (server) {
    SetInt(socket, ZMQ_CURVE_SERVER, 1);
    // With a domain set, every handshake is put to the ZAP handler.
    TOWERPS_RETURN_IF_ERROR(SetString(socket, ZMQ_ZAP_DOMAIN, kZapDomain, "ZAP domain"));
  } else {
    TOWERPS_RETURN_IF_ERROR(
        SetString(socket, ZMQ_CURVE_SERVERKEY, keys.server_public_key, "CURVE server key"));
    TOWERPS_RETURN_IF_ERROR(SetString(socket, ZMQ_CURVE_PUBLICKEY, keys.public_key, "CURVE public key"));
  }
  return SetString(socket, ZMQ_CURVE_SECRETKEY, keys.secret_key, "CURVE secret key");
}

}  // namespace

Frame::Frame() { zmq_msg_init(&msg_); }
Frame::~Frame() { zmq_msg_close(&msg_); }
Frame::Frame(Frame&& other) noexcept {
  zmq_msg_init(&msg_);
  zmq_msg_move(&msg_, &other.msg_);
}
Frame& Frame::operator=(Frame&& other) noexcept {
  if (this != &other) zmq_msg_move(&msg_, &other.msg_);
  return *this;
}
const char* Frame::data() const {
  return static_cast<const char*>(zmq_msg_data(const_cast<zmq_msg_t*>(&msg_)));
}
size_t Frame::size() const { return zmq_msg_size(const_cast<zmq_msg_t*>(&msg_)); }
std::string Frame::Property(const char* name) const {
  const char* value = zmq_msg_gets(const_cast<zmq_msg_t*>(&msg_), name);
  return value == nullptr ? std::string() : std::string(value);
}

ZmqContext::ZmqContext() : ctx_(zmq_ctx_new()) { CHECK(ctx_ != nullptr); }
ZmqContext::~ZmqContext() { zmq_ctx_term(ctx_); }

std::string ZmqContext::UniqueInprocEndpoint(absl::string_view prefix) const {
  return absl::StrCat("inproc://", prefix, "-", next_inproc_id_.fetch_add(1));
}

absl::StatusOr<CurveKeys> GenerateCurveKeys() {
  char public_key[41];
  char secret_key[41];
  if (zmq_curve_keypair(public_key, secret_key) != 0) {
    return absl::UnimplementedError("this libzmq was built without CURVE support");
  }
  CurveKeys keys;
  keys.public_key = public_key;
  keys.secret_key = secret_key;
  return keys;
}

absl::Status RpcServerOptions::Validate() const {
  if (bind_endpoint.empty()) return absl::InvalidArgumentError("bind endpoint is empty");
  if (handler_threads < 0) return absl::InvalidArgumentError("handler_threads must be >= 0");
  if (queue_capacity == 0) return absl::InvalidArgumentError("queue_capacity must be > 0");
  return codec.Validate();
}

RpcServer::RpcServer(const RpcServerOptions& options, Handler handler, MetricsRegistry* metrics)
    : options_(options), handler_(std::move(handler)), queue_(options.queue_capacity) {
  if (metrics != nullptr) {
    requests_ = metrics->GetCounter("towerps_net_requests_total");
    bad_requests_ = metrics->GetCounter("towerps_net_bad_requests_total");
    denied_ = metrics->GetCounter("towerps_net_permission_denied_total");
    handle_us_ = metrics->GetHistogram("towerps_net_handle_latency_us");
    handler_exceptions_ = metrics->GetCounter("towerps_net_handler_exceptions_total");
  }
}

absl::StatusOr<std::unique_ptr<RpcServer>> RpcServer::Start(const ZmqContext* ctx,
                                                             const RpcServerOptions& options,
                                                             Handler handler,
                                                             MetricsRegistry* metrics) {
  TOWERPS_RETURN_IF_ERROR(options.Validate());
  std::unique_ptr<RpcServer> server(new RpcServer(options, std::move(handler), metrics));
  server->ctx_ = ctx;
  server->router_ = zmq_socket(ctx->get(), ZMQ_ROUTER);
  SetInt(server->router_, ZMQ_LINGER, 0);
  SetInt(server->router_, ZMQ_ROUTER_MANDATORY, 1);
  SetInt(server->router_, ZMQ_SNDHWM, 0);
  SetInt(server->router_, ZMQ_RCVHWM, 0);
  absl::Status curve = ApplyCurve(server->router_, options.curve, /*server=*/true);
  if (!curve.ok() || zmq_bind(server->router_, options.bind_endpoint.c_str()) != 0) {
    absl::Status status =
        curve.ok() ? ZmqError(absl::StrCat("bind ", options.bind_endpoint)) : curve;
    zmq_close(server->router_);
    server->router_ = nullptr;
    return status;
  }
  char endpoint[256];
  size_t size = sizeof(endpoint);
  zmq_getsockopt(server->router_, ZMQ_LAST_ENDPOINT, endpoint, &size);
  server->endpoint_ = endpoint;
  server->reply_endpoint_ = ctx->UniqueInprocEndpoint("towerps-rpc-replies");
  server->replies_ = zmq_socket(ctx->get(), ZMQ_PULL);
  SetInt(server->replies_, ZMQ_LINGER, 0);
  SetInt(server->replies_, ZMQ_RCVHWM, 0);
  CHECK_EQ(zmq_bind(server->replies_, server->reply_endpoint_.c_str()), 0);
  RpcServer* raw = server.get();
  for (int i = 0; i < options.handler_threads; ++i) {
    server->handler_threads_.emplace_back([raw, i] { raw->HandlerLoop(i); });
  }
  server->io_thread_ = std::thread([raw] { raw->IoLoop(); });
  LOG(INFO) << options.name << ": serving on " << server->endpoint_ << " with "
            << options.handler_threads << " handler threads";
  return server;
}

RpcServer::~RpcServer() { Stop(); }

void RpcServer::Stop() {
  if (stopping_.exchange(true)) return;
  if (io_thread_.joinable()) io_thread_.join();
  queue_.Close();
  for (auto& t : handler_threads_) t.join();
  handler_threads_.clear();
  if (replies_ != nullptr) zmq_close(replies_);
  replies_ = nullptr;
}

void RpcServer::IoLoop() {
  NameThread(absl::StrCat("rpc-io"));
  zmq_pollitem_t items[2] = {{router_, 0, ZMQ_POLLIN, 0}, {replies_, 0, ZMQ_POLLIN, 0}};
  while (!stopping_.load()) {
    int rc = zmq_poll(items, 2, kPollIntervalMs);
    if (rc < 0) {
      if (zmq_errno() == EINTR) continue;
      LOG(ERROR) << options_.name << ": poll: " << zmq_strerror(zmq_errno());
      break;
    }
    // Replies first, so handlers are never starved of room.
    while (true) {
      Frame identity, payload;
      if (!RecvFrame(replies_, &identity, ZMQ_DONTWAIT).ok()) break;
      CHECK(MoreFrames(replies_));
      CHECK(RecvFrame(replies_, &payload, 0).ok());
      absl::Status status = SendFrame(router_, &identity, ZMQ_SNDMORE);
      if (status.ok()) status = SendFrame(router_, &payload, 0);
      if (!status.ok()) {
        LOG_EVERY_N(WARNING, 100) << options_.name << ": reply dropped (peer gone?): " << status;
      }
    }
    while (true) {
      Incoming in;
      if (!RecvFrame(router_, &in.identity, ZMQ_DONTWAIT).ok()) break;
      bool well_formed = MoreFrames(router_) && RecvFrame(router_, &in.payload, 0).ok();
      int extra = 0;
      while (MoreFrames(router_)) {  // drop unexpected extra frames
        Frame skip;
        (void)RecvFrame(router_, &skip, 0);
        ++extra;
      }
      if (!well_formed || extra > 0) {
        if (bad_requests_) bad_requests_->Increment();
        std::string reply =
            EncodeError(options_.name, 0,
                        absl::InvalidArgumentError("a request is exactly one frame"));
        auto bytes = std::make_shared<const std::string>(std::move(reply));
        if (SendFrame(router_, &in.identity, ZMQ_SNDMORE).ok()) {
          (void)SendShared(router_, bytes, 0);
        }
        continue;
      }
      if (handler_threads_.empty()) {  // inline: serve on this thread, no hand-offs
        std::string reply = Serve(in.payload);
        absl::Status status = SendFrame(router_, &in.identity, ZMQ_SNDMORE);
        if (status.ok()) {
          status = SendShared(router_, std::make_shared<const std::string>(std::move(reply)), 0);
        }
        if (!status.ok()) {
          LOG_EVERY_N(WARNING, 100) << options_.name << ": reply dropped (peer gone?): " << status;
        }
        continue;
      }
      if (!queue_.Push(std::move(in))) break;
    }
  }
  zmq_close(router_);
  router_ = nullptr;
}

void RpcServer::HandlerLoop(int index) {
  NameThread(absl::StrCat("rpc-handler-", index));
  void* push = zmq_socket(ctx_->get(), ZMQ_PUSH);
  SetInt(push, ZMQ_LINGER, 0);
  SetInt(push, ZMQ_SNDHWM, 0);
  CHECK_EQ(zmq_connect(push, reply_endpoint_.c_str()), 0);
  while (std::optional<Incoming> in = queue_.Pop()) {
    std::string reply = Serve(in->payload);
    absl::Status status = SendFrame(push, &in->identity, ZMQ_SNDMORE);
    if (status.ok()) {
      status = SendShared(push, std::make_shared<const std::string>(std::move(reply)), 0);
    }
    if (!status.ok()) LOG(ERROR) << options_.name << ": handing reply to io thread: " << status;
  }
  zmq_close(push);
}

absl::StatusOr<std::string> RpcServer::RunHandler(const Peer& peer,
                                                  const wire::Envelope::Reader& request) {
  // A handler must not throw, but Cap'n Proto's builders do (a blob over its size
  // limit, a list too long) and so may anything it calls: an escaped exception would
  // end the process (std::terminate on this thread). It becomes an error reply.
  std::string what;
  try {
    return handler_(peer, request);
  } catch (const kj::Exception& e) {
    what = e.getDescription().cStr();
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
    what = "an exception of unknown type";
  }
  if (handler_exceptions_) handler_exceptions_->Increment();
  LOG_EVERY_N(ERROR, 100) << options_.name << ": handler threw on request "
                          << request.getRequestId() << " from " << request.getSender().cStr()
                          << ": " << what.substr(0, kMaxErrorMessageBytes);
  return absl::InternalError(absl::StrCat("the server failed to handle the request: ", what));
}

std::string RpcServer::Serve(const Frame& payload) {
  const int64_t start = NowMicros();
  if (requests_) requests_->Increment();
  std::string reply;
  auto decoded = DecodeEnvelope(payload.view(), options_.codec);
  if (!decoded.ok()) {
    if (bad_requests_) bad_requests_->Increment();
    LOG_EVERY_N(WARNING, 100) << options_.name << ": bad request: " << decoded.status();
    reply = EncodeError(options_.name, 0, decoded.status());
  } else {
    auto envelope = (*decoded)->envelope();
    Peer peer;
    if (options_.curve.enabled()) peer.identity = payload.Property("User-Id");
    // CURVE without an identity: no ZapAuthenticator vouched for the peer's key.
    absl::StatusOr<std::string> result =
        options_.curve.enabled() && !peer.authenticated()
            ? absl::PermissionDeniedError("no ZAP handler authenticated this CURVE peer")
            : RunHandler(peer, envelope);
    if (result.status().code() == absl::StatusCode::kPermissionDenied) {
      if (denied_) denied_->Increment();
      LOG_EVERY_N(WARNING, 100) << options_.name << ": refused request " << envelope.getRequestId()
                                << ": " << result.status();
    }
    if (result.ok()) {
      reply = std::move(result).value();
    } else {
      if (bad_requests_) bad_requests_->Increment();
      VLOG(1) << options_.name << ": request " << envelope.getRequestId() << " from "
              << envelope.getSender().cStr() << " failed: " << result.status();
      reply = EncodeError(options_.name, envelope.getRequestId(), result.status());
    }
  }
  if (handle_us_) handle_us_->Record(static_cast<double>(NowMicros() - start));
  return reply;
}

absl::Status RpcClientOptions::Validate() const {
  if (endpoint.empty()) return absl::InvalidArgumentError("client endpoint is empty");
  if (!source_host.empty() && (!IsIPv4Address(source_host) || source_host == kAnyHost)) {
    return absl::InvalidArgumentError(
        absl::StrCat("source_host '", source_host, "' is not one IPv4 address"));
  }
  if (timeout_ms <= 0) return absl::InvalidArgumentError("timeout_ms must be > 0");
  if (max_attempts < 1) return absl::InvalidArgumentError("max_attempts must be >= 1");
  if (backoff_ms < 0) return absl::InvalidArgumentError("backoff_ms must be >= 0");
  return codec.Validate();
}

RpcClient::RpcClient(const RpcClientOptions& options) : options_(options) {}

absl::StatusOr<std::unique_ptr<RpcClient>> RpcClient::Connect(const ZmqContext* ctx,
                                                               const RpcClientOptions& options) {
  TOWERPS_RETURN_IF_ERROR(options.Validate());
  std::unique_ptr<RpcClient> client(new RpcClient(options));
  client->socket_ = zmq_socket(ctx->get(), ZMQ_DEALER);
  SetInt(client->socket_, ZMQ_LINGER, 0);
  SetInt(client->socket_, ZMQ_SNDHWM, 0);
  SetInt(client->socket_, ZMQ_RCVHWM, 0);
  SetInt(client->socket_, ZMQ_SNDTIMEO, static_cast<int>(options.timeout_ms));
  TOWERPS_RETURN_IF_ERROR(ApplyCurve(client->socket_, options.curve, /*server=*/false));
  const std::string connect_to = WithSourceAddress(options.endpoint, options.source_host);
  if (zmq_connect(client->socket_, connect_to.c_str()) != 0) {
    return ZmqError(absl::StrCat("connect ", options.endpoint));
  }
  return client;
}

RpcClient::~RpcClient() {
  if (socket_ != nullptr) zmq_close(socket_);
}

absl::Status RpcClient::Transmit(Pending* pending) {
  ++pending->attempts;
  pending->deadline_us = NowMicros() + options_.timeout_ms * 1000;
  // The socket shares the bytes; a request that may be resent keeps its reference.
  absl::Status status = SendShared(socket_, pending->frame, 0);
  if (!pending->retry) pending->frame.reset();
  return status;
}

absl::Status RpcClient::Send(uint64_t request_id, std::string frame, bool retry) {
  Pending& pending = pending_[request_id];
  pending.frame = std::make_shared<const std::string>(std::move(frame));
  pending.retry = retry && options_.max_attempts > 1;
  absl::Status status = Transmit(&pending);
  if (!status.ok()) pending_.erase(request_id);
  return Annotate(status, options_.endpoint);
}

void RpcClient::DrainSocket() {
  while (true) {
    Frame frame;
    if (!RecvFrame(socket_, &frame, ZMQ_DONTWAIT).ok()) return;
    while (MoreFrames(socket_)) {
      Frame skip;
      (void)RecvFrame(socket_, &skip, 0);
    }
    auto decoded = DecodeEnvelope(frame.view(), options_.codec);
    if (!decoded.ok()) {
      LOG_EVERY_N(WARNING, 100) << options_.name << ": malformed reply from "
                                << options_.endpoint << ": " << decoded.status();
      continue;
    }
    uint64_t id = (*decoded)->envelope().getRequestId();
    auto it = pending_.find(id);
    if (it == pending_.end() || it->second.result != nullptr) continue;  // late duplicate
    auto body = (*decoded)->envelope().getBody();
    if (body.which() == wire::Envelope::Body::ERROR) {
      it->second.result = std::make_unique<absl::StatusOr<Message>>(
          Annotate(StatusFromError(body.getError()), options_.endpoint));
    } else {
      Message message{std::move(frame), std::move(decoded).value()};
      it->second.result = std::make_unique<absl::StatusOr<Message>>(std::move(message));
    }
    it->second.frame.reset();
  }
}

void RpcClient::ExpireDeadlines(int64_t now_us) {
  for (auto& [id, pending] : pending_) {
    if (pending.result != nullptr || now_us < pending.deadline_us) continue;
    if (pending.retry && pending.attempts < options_.max_attempts) {
      LOG(WARNING) << options_.name << ": request " << id << " to " << options_.endpoint
                   << " timed out after " << options_.timeout_ms << " ms; resending (attempt "
                   << pending.attempts + 1 << " of " << options_.max_attempts << ")";
      int64_t backoff_ms = options_.backoff_ms << std::min(pending.attempts - 1, 10);
      std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
      absl::Status status = Transmit(&pending);
      if (status.ok()) continue;
      pending.result = std::make_unique<absl::StatusOr<Message>>(status);
      continue;
    }
    pending.result = std::make_unique<absl::StatusOr<Message>>(absl::DeadlineExceededError(
        absl::StrCat("no reply from ", options_.endpoint, " to request ", id, " after ",
                     pending.attempts, " attempt(s) of ", options_.timeout_ms, " ms",
                     options_.curve.enabled()
                         ? " (CURVE is on: a server that does not allow this key, or "
                           "expects another server key, never answers; check --curve_dir)"
                         : "")));
  }
}

void RpcClient::CancelPending(const absl::Status& reason) {
  for (auto& [id, pending] : pending_) {
    if (pending.result != nullptr) continue;
    pending.result = std::make_unique<absl::StatusOr<Message>>(reason);
    pending.frame.reset();
  }
}

absl::StatusOr<Message> RpcClient::TakeResult(uint64_t request_id) {
  auto it = pending_.find(request_id);
  absl::StatusOr<Message> result = std::move(*it->second.result);
  pending_.erase(it);
  return result;
}

absl::StatusOr<Message> RpcClient::Wait(uint64_t request_id) {
  std::pair<RpcClient*, uint64_t> one{this, request_id};
  return std::move(WaitAll(absl::MakeConstSpan(&one, 1))[0]);
}

absl::StatusOr<Message> RpcClient::Call(uint64_t request_id, std::string frame, bool retry) {
  TOWERPS_RETURN_IF_ERROR(Send(request_id, std::move(frame), retry));
  return Wait(request_id);
}

std::vector<absl::StatusOr<Message>> RpcClient::WaitAll(
    absl::Span<const std::pair<RpcClient*, uint64_t>> requests) {
  std::vector<RpcClient*> clients;
  for (const auto& [client, id] : requests) {
    CHECK(client->pending_.contains(id)) << "Wait on a request that was never sent: " << id;
    if (std::find(clients.begin(), clients.end(), client) == clients.end()) {
      clients.push_back(client);
    }
  }
  std::vector<zmq_pollitem_t> items;
  for (RpcClient* client : clients) items.push_back({client->socket_, 0, ZMQ_POLLIN, 0});
  while (true) {
    for (RpcClient* client : clients) client->DrainSocket();
    int64_t now = NowMicros();
    for (RpcClient* client : clients) client->ExpireDeadlines(now);
    int64_t poll_cap_ms = 1000;
    for (RpcClient* client : clients) {
      const Cancellation* cancel = client->options_.cancel;
      if (cancel == nullptr) continue;
      poll_cap_ms = kCancelPollMs;
      if (cancel->cancelled()) client->CancelPending(cancel->reason());
    }
    int64_t next_deadline = INT64_MAX;
    bool all_done = true;
    for (const auto& [client, id] : requests) {
      const Pending& pending = client->pending_.at(id);
      if (pending.result == nullptr) {
        all_done = false;
        next_deadline = std::min(next_deadline, pending.deadline_us);
      }
    }
    if (all_done) break;
    int64_t wait_ms = std::max<int64_t>(0, (next_deadline - now + 999) / 1000);
    zmq_poll(items.data(), static_cast<int>(items.size()), std::min(wait_ms, poll_cap_ms));
  }
  std::vector<absl::StatusOr<Message>> results;
  results.reserve(requests.size());
  for (const auto& [client, id] : requests) results.push_back(client->TakeResult(id));
  return results;
}

}  // namespace towerps::net
