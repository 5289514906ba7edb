// Test-only: a stand-in scheduler on 127.0.0.1 that answers every request with a
// ClockReply carrying the phase, reason and learning-rate scale it is set to, or with
// `error` when that is not OK. For the tests of net/ clients (membership, watch).
// A restarted scheduler is played by forget_nodes(): heartbeats are then answered
// NotFound until a Register arrives (answered with a RegisterReply granting the
// asked rank, or with register_error when that is set).
// Thread-safe (the setters are atomic; the server runs on its own threads).
#ifndef TOWERPS_NET_FAKE_SCHEDULER_H_
#define TOWERPS_NET_FAKE_SCHEDULER_H_

#include <capnp/message.h>

#include <atomic>
#include <memory>
#include <string>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "net/codec.h"
#include "net/transport.h"

namespace towerps::net {

class FakeScheduler {
 public:
  FakeScheduler(const ZmqContext* ctx, uint8_t phase, std::string reason,
                absl::Status error = absl::OkStatus())
      : phase_(phase), reason_(std::move(reason)), error_(std::move(error)) {
    auto server = RpcServer::Start(
        ctx, RpcServerOptions(),
        [this](const Peer&, const wire::Envelope::Reader& r) -> absl::StatusOr<std::string> {
          if (!error_.ok()) return error_;
          capnp::MallocMessageBuilder message;
          auto envelope = message.initRoot<wire::Envelope>();
          InitEnvelope(envelope, "scheduler", r.getRequestId());
          if (r.getBody().isRegister()) {
            auto reg = r.getBody().getRegister();
            {
              absl::MutexLock lock(&mu_);
              if (!register_error_.ok()) return register_error_;
              last_job_id_ = reg.getJobId();
            }
            ++registrations_;
            forgotten_ = false;
            auto reply = envelope.getBody().initRegisterReply();
            reply.setRank(reg.getRank());
            reply.setPhase(phase_.load());
            return EncodeMessage(message);
          }
          if (forgotten_) return absl::NotFoundError("this node is not registered");
          auto reply = envelope.getBody().initClockReply();
          reply.setGlobalStep(3);
          reply.setPhase(phase_.load());
          reply.setReason(reason_.c_str());
          reply.setLrScale(lr_scale_.load());
          reply.setEpoch(epoch_.load());
          return EncodeMessage(message);
        },
        nullptr);
    EXPECT_TRUE(server.ok()) << server.status();
    server_ = std::move(server).value();
  }
  const std::string& endpoint() const { return server_->endpoint(); }
  void set_phase(uint8_t phase) { phase_ = phase; }
  void set_lr_scale(float scale) { lr_scale_ = scale; }
  void set_epoch(uint64_t epoch) { epoch_ = epoch; }
  void forget_nodes() { forgotten_ = true; }
  void set_register_error(absl::Status error) {
    absl::MutexLock lock(&mu_);
    register_error_ = std::move(error);
  }
  int registrations() const { return registrations_.load(); }
  uint64_t last_job_id() {
    absl::MutexLock lock(&mu_);
    return last_job_id_;
  }

 private:
  std::atomic<bool> forgotten_{false};
  std::atomic<int> registrations_{0};
  absl::Mutex mu_;
  absl::Status register_error_;
  uint64_t last_job_id_ = 0;
  std::atomic<uint8_t> phase_;
  std::atomic<float> lr_scale_{1.0f};
  std::atomic<uint64_t> epoch_{1};
  const std::string reason_;
  const absl::Status error_;
  std::unique_ptr<RpcServer> server_;
};

}  // namespace towerps::net

#endif  // TOWERPS_NET_FAKE_SCHEDULER_H_
