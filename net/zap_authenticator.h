// The ZAP handler (ZeroMQ RFC 27) of a secured process: libzmq asks it, during every
// CURVE handshake on a server socket of the same context, whether the client's
// public key may connect. Keys in the allow-list are accepted (status 200) with their
// identity ("worker/1") as User-Id, which RpcServer hands to its handler as the Peer;
// any other key is refused (400) before a single byte of the peer's reaches a
// handler: the handshake fails and the client's requests time out.
//
// Threads: one, named "zap", owns the REP socket bound to inproc://zeromq.zap.01
// (bound in Start, so no handshake can happen before the handler exists). Stop()
// (also run by the destructor) is idempotent and joins it.
//
// One per ZmqContext, made in main before any server socket binds. Thread-safe.
#ifndef TOWERPS_NET_ZAP_AUTHENTICATOR_H_
#define TOWERPS_NET_ZAP_AUTHENTICATOR_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "common/metrics.h"
#include "net/curve_keys.h"
#include "net/transport.h"

namespace towerps::net {

// The ZAP domain set on every CURVE server socket (ZMQ_ZAP_DOMAIN).
inline constexpr char kZapDomain[] = "towerps";

class ZapAuthenticator {
 public:
  // Binds the ZAP endpoint of `ctx` and starts the thread. `allowed` maps public keys
  // (Z85) to identities. Errors: Unavailable when the context already has a ZAP
  // handler. ctx and metrics are borrowed (metrics may be null) and must outlive it.
  static absl::StatusOr<std::unique_ptr<ZapAuthenticator>> Start(const ZmqContext* ctx,
                                                                 AllowList allowed,
                                                                 MetricsRegistry* metrics);
  ~ZapAuthenticator();
  ZapAuthenticator(const ZapAuthenticator&) = delete;
  ZapAuthenticator& operator=(const ZapAuthenticator&) = delete;

  // Stops answering and joins the thread. Handshakes after this fail. Idempotent.
  void Stop();

 private:
  ZapAuthenticator(AllowList allowed, MetricsRegistry* metrics);
  void Loop();
  // Receives one request and sends its reply (a malformed request gets status 500).
  void AnswerOne();

  // Constant after construction.
  const AllowList allowed_;
  Counter* accepted_ = nullptr;
  Counter* refused_ = nullptr;

  // Only the zap thread (after Start returns).
  void* socket_ = nullptr;

  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace towerps::net

#endif  // TOWERPS_NET_ZAP_AUTHENTICATOR_H_
