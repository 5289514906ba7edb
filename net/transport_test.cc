#include "net/transport.h"

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace towerps::net {
namespace {

std::string PingFrame(uint64_t request_id, uint64_t nonce) {
  capnp::MallocMessageBuilder message;
  auto envelope = message.initRoot<wire::Envelope>();
  InitEnvelope(envelope, "test", request_id);
  envelope.getBody().initPing().setNonce(nonce);
  return EncodeMessage(message);
}

// Replies Pong(nonce); nonce 666 fails with InvalidArgument; 888 throws a
// kj::Exception and 889 a std::exception; nonce 777 sleeps 400 ms on its first
// arrival only (a slow or lost reply).
absl::StatusOr<std::string> EchoHandler(const wire::Envelope::Reader& request,
                                        std::atomic<int>* slow_arrivals) {
  if (request.getBody().which() != wire::Envelope::Body::PING) {
    return absl::InvalidArgumentError("expected ping");
  }
  uint64_t nonce = request.getBody().getPing().getNonce();
  if (nonce == 666) return absl::InvalidArgumentError("nonce 666 refused");
  if (nonce == 888) KJ_FAIL_REQUIRE("a Cap'n Proto builder refused", nonce);
  if (nonce == 889) throw std::length_error("a std::string grew too long");
  if (nonce == 777 && slow_arrivals->fetch_add(1) == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
  }
  capnp::MallocMessageBuilder message;
  auto envelope = message.initRoot<wire::Envelope>();
  InitEnvelope(envelope, "server", request.getRequestId());
  envelope.getBody().initPong().setNonce(nonce);
  return EncodeMessage(message);
}

// Every test runs with handler threads and with inline serving on the io thread.
class TransportTest : public ::testing::TestWithParam<int> {
 protected:
  std::unique_ptr<RpcServer> StartServer(const CurveKeys& curve = CurveKeys()) {
    RpcServerOptions options;
    options.handler_threads = GetParam();
    options.curve = curve;
    auto server = RpcServer::Start(
        &ctx_, options,
        [this](const Peer&, const wire::Envelope::Reader& r) { return EchoHandler(r, &slow_); },
        &metrics_);
    EXPECT_TRUE(server.ok()) << server.status();
    return std::move(server).value();
  }
  std::unique_ptr<RpcClient> Connect(const std::string& endpoint, int64_t timeout_ms = 2000,
                                     int attempts = 3, const CurveKeys& curve = CurveKeys()) {
    RpcClientOptions options;
    options.endpoint = endpoint;
    options.timeout_ms = timeout_ms;
    options.max_attempts = attempts;
    options.backoff_ms = 10;
    options.curve = curve;
    auto client = RpcClient::Connect(&ctx_, options);
    EXPECT_TRUE(client.ok()) << client.status();
    return std::move(client).value();
  }

  ZmqContext ctx_;
  MetricsRegistry metrics_;
  std::atomic<int> slow_{0};
};

TEST_P(TransportTest, CallRoundTrip) {
  auto server = StartServer();
  auto client = Connect(server->endpoint());
  for (uint64_t i = 0; i < 100; ++i) {
    uint64_t id = client->NextRequestId();
    auto reply = client->Call(id, PingFrame(id, i), /*retry=*/true);
    ASSERT_TRUE(reply.ok()) << reply.status();
    EXPECT_EQ(reply->envelope().getRequestId(), id);
    EXPECT_EQ(reply->envelope().getBody().getPong().getNonce(), i);
  }
}

TEST_P(TransportTest, HandlerErrorReachesCaller) {
  auto server = StartServer();
  auto client = Connect(server->endpoint());
  uint64_t id = client->NextRequestId();
  auto reply = client->Call(id, PingFrame(id, 666), true);
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(reply.status().message().find("nonce 666 refused"), std::string::npos);
}

// An exception escaping a handler is an Internal error reply, counted; the server
// keeps serving (it used to std::terminate the process).
TEST_P(TransportTest, HandlerExceptionIsAnErrorReply) {
  auto server = StartServer();
  auto client = Connect(server->endpoint());
  for (uint64_t nonce : {888, 889}) {
    uint64_t id = client->NextRequestId();
    auto reply = client->Call(id, PingFrame(id, nonce), /*retry=*/false);
    EXPECT_EQ(reply.status().code(), absl::StatusCode::kInternal) << reply.status();
  }
  uint64_t id = client->NextRequestId();
  auto reply = client->Call(id, PingFrame(id, 5), true);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->envelope().getBody().getPong().getNonce(), 5u);
  EXPECT_EQ(metrics_.GetCounter("towerps_net_handler_exceptions_total")->value(), 2);
}

// Servers made and freed one after another in one context: each gets an inproc name
// of its own (a freed server's memory, and so its old name, used to be reused while
// libzmq still held the name: a CHECK failure).
TEST_P(TransportTest, ServersMadeAfterFreedOnesStart) {
  for (int i = 0; i < 20; ++i) {
    auto server = StartServer();
    ASSERT_NE(server, nullptr);
  }
}

TEST_P(TransportTest, MalformedFramesGetErrorRepliesAndServerKeepsServing) {
  auto server = StartServer();
  void* raw = zmq_socket(ctx_.get(), ZMQ_DEALER);
  int linger = 0;
  zmq_setsockopt(raw, ZMQ_LINGER, &linger, sizeof(linger));
  int timeout = 5000;
  zmq_setsockopt(raw, ZMQ_RCVTIMEO, &timeout, sizeof(timeout));
  ASSERT_EQ(zmq_connect(raw, server->endpoint().c_str()), 0);
  std::string good = PingFrame(9, 9);
  std::vector<std::string> bad = {std::string(40, '\xff'), good.substr(0, good.size() / 2),
                                  "abc", std::string()};
  for (const std::string& frame : bad) {
    ASSERT_EQ(zmq_send(raw, frame.data(), frame.size(), 0), static_cast<int>(frame.size()));
    Frame reply;
    ASSERT_GE(zmq_msg_recv(reply.raw(), raw, 0), 0) << "no reply to a bad frame";
    auto decoded = DecodeEnvelope(reply.view(), CodecOptions());
    ASSERT_TRUE(decoded.ok());
    ASSERT_EQ((*decoded)->envelope().getBody().which(), wire::Envelope::Body::ERROR);
    EXPECT_EQ(StatusFromError((*decoded)->envelope().getBody().getError()).code(),
              absl::StatusCode::kDataLoss);
  }
  // Two frames in one request: refused with InvalidArgument.
  zmq_send(raw, "a", 1, ZMQ_SNDMORE);
  zmq_send(raw, good.data(), good.size(), 0);
  Frame reply;
  ASSERT_GE(zmq_msg_recv(reply.raw(), raw, 0), 0);
  auto decoded = DecodeEnvelope(reply.view(), CodecOptions());
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(StatusFromError((*decoded)->envelope().getBody().getError()).code(),
            absl::StatusCode::kInvalidArgument);
  zmq_close(raw);
  auto client = Connect(server->endpoint());
  uint64_t id = client->NextRequestId();
  EXPECT_TRUE(client->Call(id, PingFrame(id, 1), true).ok());
  EXPECT_GE(metrics_.GetCounter("towerps_net_bad_requests_total")->value(), 5);
}

TEST_P(TransportTest, SlowReplyIsRetriedAndAnsweredOnce) {
  auto server = StartServer();
  // Inline serving answers in arrival order: the resends wait behind the slow first
  // attempt, whose reply (same request id) answers the call, so it needs attempts
  // spanning the 400 ms; with handler threads a resend is answered by another thread.
  const bool inline_serving = GetParam() == 0;
  auto client =
      Connect(server->endpoint(), /*timeout_ms=*/100, /*attempts=*/inline_serving ? 8 : 3);
  uint64_t id = client->NextRequestId();
  auto reply = client->Call(id, PingFrame(id, 777), /*retry=*/true);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->envelope().getBody().getPong().getNonce(), 777u);
  if (!inline_serving) {
    EXPECT_EQ(slow_.load(), 2);  // the resend reached the server
  }
  // The late first reply is dropped, not mistaken for the next request's.
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  uint64_t next = client->NextRequestId();
  auto second = client->Call(next, PingFrame(next, 5), true);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->envelope().getBody().getPong().getNonce(), 5u);
}

TEST_P(TransportTest, NoServerIsDeadlineExceeded) {
  auto client = Connect("tcp://127.0.0.1:1", /*timeout_ms=*/50, /*attempts=*/2);
  uint64_t id = client->NextRequestId();
  auto reply = client->Call(id, PingFrame(id, 1), true);
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_P(TransportTest, WaitAllFansOutToManyServers) {
  auto a = StartServer();
  auto b = StartServer();
  auto ca = Connect(a->endpoint());
  auto cb = Connect(b->endpoint());
  std::vector<std::pair<RpcClient*, uint64_t>> requests;
  for (int i = 0; i < 8; ++i) {
    RpcClient* c = (i % 2 == 0) ? ca.get() : cb.get();
    uint64_t id = c->NextRequestId();
    ASSERT_TRUE(c->Send(id, PingFrame(id, 100 + i), true).ok());
    requests.push_back({c, id});
  }
  auto replies = RpcClient::WaitAll(requests);
  ASSERT_EQ(replies.size(), 8u);
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(replies[i].ok()) << replies[i].status();
    EXPECT_EQ(replies[i]->envelope().getBody().getPong().getNonce(), 100u + i);
  }
}

TEST_P(TransportTest, ConcurrentClientsFromManyThreads) {
  auto server = StartServer();
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto client = Connect(server->endpoint());
      for (int i = 0; i < 200; ++i) {
        uint64_t id = client->NextRequestId();
        auto reply = client->Call(id, PingFrame(id, t * 1000 + i), true);
        if (reply.ok() && reply->envelope().getBody().getPong().getNonce() ==
                              static_cast<uint64_t>(t * 1000 + i)) {
          ++ok;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 800);
}

// CURVE with no ZapAuthenticator in the context: nobody vouches for a client's key,
// so even a well-keyed client is refused (zap_authenticator_test.cc covers ZAP).
TEST_P(TransportTest, CurveWithoutZapRefusesEveryPeer) {
  auto server_keys = GenerateCurveKeys();
  if (!server_keys.ok()) GTEST_SKIP() << server_keys.status();
  auto server = StartServer(*server_keys);
  auto client_keys = GenerateCurveKeys();
  ASSERT_TRUE(client_keys.ok());
  client_keys->server_public_key = server_keys->public_key;
  auto keyed = Connect(server->endpoint(), 2000, 1, *client_keys);
  uint64_t id = keyed->NextRequestId();
  EXPECT_EQ(keyed->Call(id, PingFrame(id, 1), false).status().code(),
            absl::StatusCode::kPermissionDenied);
  auto plain = Connect(server->endpoint(), 200, 1);
  id = plain->NextRequestId();
  EXPECT_EQ(plain->Call(id, PingFrame(id, 1), false).status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

INSTANTIATE_TEST_SUITE_P(HandlerThreads, TransportTest, ::testing::Values(0, 2));

}  // namespace
}  // namespace towerps::net
