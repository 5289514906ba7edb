#include "net/zap_authenticator.h"

#include <atomic>
#include <string>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace towerps::net {
namespace {

std::string PingFrame(uint64_t request_id) {
  capnp::MallocMessageBuilder message;
  auto envelope = message.initRoot<wire::Envelope>();
  InitEnvelope(envelope, "test", request_id);
  envelope.getBody().initPing().setNonce(1);
  return EncodeMessage(message);
}

// A CURVE server whose handler records the peer identity it saw, with the context's
// ZAP handler allowing one client key as "worker/1".
class ZapAuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server_keys = GenerateCurveKeys();
    if (!server_keys.ok()) GTEST_SKIP() << server_keys.status();
    server_keys_ = *server_keys;
    auto client_keys = GenerateCurveKeys();
    ASSERT_TRUE(client_keys.ok());
    allowed_keys_ = *client_keys;
    allowed_keys_.server_public_key = server_keys_.public_key;
    AllowList allowed = {{allowed_keys_.public_key, "worker/1"}};
    auto zap = ZapAuthenticator::Start(&ctx_, allowed, &metrics_);
    ASSERT_TRUE(zap.ok()) << zap.status();
    zap_ = std::move(zap).value();
    RpcServerOptions options;
    options.handler_threads = 1;
    options.curve = server_keys_;
    auto server = RpcServer::Start(
        &ctx_, options,
        [this](const Peer& peer,
               const wire::Envelope::Reader& request) -> absl::StatusOr<std::string> {
          {
            absl::MutexLock lock(&mu_);
            seen_.push_back(peer.identity);
          }
          capnp::MallocMessageBuilder message;
          auto envelope = message.initRoot<wire::Envelope>();
          InitEnvelope(envelope, "server", request.getRequestId());
          envelope.getBody().initPong().setNonce(2);
          return EncodeMessage(message);
        },
        &metrics_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(server).value();
  }

  absl::Status Ping(const CurveKeys& keys, int64_t timeout_ms) {
    RpcClientOptions options;
    options.endpoint = server_->endpoint();
    options.timeout_ms = timeout_ms;
    options.max_attempts = 1;
    options.curve = keys;
    auto client = RpcClient::Connect(&ctx_, options);
    if (!client.ok()) return client.status();
    const uint64_t id = (*client)->NextRequestId();
    return (*client)->Call(id, PingFrame(id), /*retry=*/false).status();
  }

  std::vector<std::string> Seen() {
    absl::MutexLock lock(&mu_);
    return seen_;
  }

  ZmqContext ctx_;
  MetricsRegistry metrics_;
  CurveKeys server_keys_;
  CurveKeys allowed_keys_;
  std::unique_ptr<ZapAuthenticator> zap_;
  std::unique_ptr<RpcServer> server_;
  absl::Mutex mu_;
  std::vector<std::string> seen_ ABSL_GUARDED_BY(mu_);
};

TEST_F(ZapAuthenticatorTest, AllowedKeyReachesTheHandlerWithItsIdentity) {
  EXPECT_TRUE(Ping(allowed_keys_, 5000).ok());
  EXPECT_EQ(Seen(), std::vector<std::string>{"worker/1"});
  EXPECT_EQ(metrics_.GetCounter("towerps_net_zap_accepted_total")->value(), 1);
}

TEST_F(ZapAuthenticatorTest, UnknownKeyIsRefusedBeforeAnyHandler) {
  auto stranger = GenerateCurveKeys();
  ASSERT_TRUE(stranger.ok());
  stranger->server_public_key = server_keys_.public_key;
  absl::Status status = Ping(*stranger, 300);
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
  EXPECT_NE(status.message().find("CURVE is on"), std::string::npos) << status;
  EXPECT_TRUE(Seen().empty());
  EXPECT_GE(metrics_.GetCounter("towerps_net_zap_refused_total")->value(), 1);
}

TEST_F(ZapAuthenticatorTest, PeerWithoutKeysIsRefused) {
  // The plaintext handshake is refused: the client waits out its deadline, or (when the
  // server drops the connection before the deadline, as seen under ASan) reports the
  // peer unavailable. Either way no handler sees the request.
  const absl::StatusCode code = Ping(CurveKeys(), 300).code();
  EXPECT_TRUE(code == absl::StatusCode::kDeadlineExceeded || code == absl::StatusCode::kUnavailable)
      << absl::StatusCodeToString(code);
  EXPECT_TRUE(Seen().empty());
}

TEST_F(ZapAuthenticatorTest, AllowedKeyWithWrongServerKeyIsRefused) {
  auto other = GenerateCurveKeys();
  ASSERT_TRUE(other.ok());
  CurveKeys keys = allowed_keys_;
  keys.server_public_key = other->public_key;
  EXPECT_EQ(Ping(keys, 300).code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(Seen().empty());
}

TEST_F(ZapAuthenticatorTest, OnePerContextAndStopIsIdempotent) {
  auto second = ZapAuthenticator::Start(&ctx_, AllowList(), nullptr);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  server_->Stop();
  zap_->Stop();
  zap_->Stop();
}

}  // namespace
}  // namespace towerps::net
