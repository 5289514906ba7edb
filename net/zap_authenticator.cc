#include "net/zap_authenticator.h"

#include <pthread.h>
#include <zmq.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace towerps::net {
namespace {

constexpr char kZapEndpoint[] = "inproc://zeromq.zap.01";
constexpr int kPollIntervalMs = 50;
// version, request id, domain, address, routing id, mechanism, then credentials.
constexpr size_t kZapHeaderFrames = 6;
constexpr size_t kCurveKeyBytes = 32;

// Receives every frame of one multipart message (at most a few; more are dropped).
std::vector<std::string> ReceiveAll(void* socket) {
  std::vector<std::string> frames;
  int more = 1;
  while (more != 0) {
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, socket, frames.empty() ? ZMQ_DONTWAIT : 0) < 0) {
      zmq_msg_close(&msg);
      break;
    }
    if (frames.size() < 16) {
      frames.emplace_back(static_cast<const char*>(zmq_msg_data(&msg)), zmq_msg_size(&msg));
    }
    more = zmq_msg_more(&msg);
    zmq_msg_close(&msg);
  }
  return frames;
}

void Reply(void* socket, const std::string& request_id, const char* code, const char* text,
           const std::string& user_id) {
  const std::string frames[] = {"1.0", request_id, code, text, user_id, ""};
  for (size_t i = 0; i < 6; ++i) {
    zmq_send(socket, frames[i].data(), frames[i].size(), i + 1 < 6 ? ZMQ_SNDMORE : 0);
  }
}

}  // namespace

ZapAuthenticator::ZapAuthenticator(AllowList allowed, MetricsRegistry* metrics)
    : allowed_(std::move(allowed)) {
  if (metrics != nullptr) {
    accepted_ = metrics->GetCounter("towerps_net_zap_accepted_total");
    refused_ = metrics->GetCounter("towerps_net_zap_refused_total");
  }
}

absl::StatusOr<std::unique_ptr<ZapAuthenticator>> ZapAuthenticator::Start(
    const ZmqContext* ctx, AllowList allowed, MetricsRegistry* metrics) {
  std::unique_ptr<ZapAuthenticator> zap(new ZapAuthenticator(std::move(allowed), metrics));
  zap->socket_ = zmq_socket(ctx->get(), ZMQ_REP);
  int linger = 0;
  zmq_setsockopt(zap->socket_, ZMQ_LINGER, &linger, sizeof(linger));
  if (zmq_bind(zap->socket_, kZapEndpoint) != 0) {
    const int err = zmq_errno();
    zmq_close(zap->socket_);
    zap->socket_ = nullptr;
    return absl::UnavailableError(absl::StrCat("bind ", kZapEndpoint, ": ", zmq_strerror(err),
                                               " (one ZAP handler per ZeroMQ context)"));
  }
  ZapAuthenticator* raw = zap.get();
  zap->thread_ = std::thread([raw] { raw->Loop(); });
  LOG(INFO) << "zap: authenticating CURVE peers against " << zap->allowed_.size()
            << " allowed keys";
  return zap;
}

ZapAuthenticator::~ZapAuthenticator() { Stop(); }

void ZapAuthenticator::Stop() {
  if (stopping_.exchange(true)) return;
  if (thread_.joinable()) thread_.join();
}

void ZapAuthenticator::Loop() {
  pthread_setname_np(pthread_self(), "zap");
  zmq_pollitem_t item = {socket_, 0, ZMQ_POLLIN, 0};
  while (!stopping_.load()) {
    const int rc = zmq_poll(&item, 1, kPollIntervalMs);
    if (rc < 0) {
      if (zmq_errno() == EINTR) continue;
      LOG(ERROR) << "zap: poll: " << zmq_strerror(zmq_errno());
      break;
    }
    if (rc > 0) AnswerOne();
  }
  zmq_close(socket_);
  socket_ = nullptr;
}

void ZapAuthenticator::AnswerOne() {
  const std::vector<std::string> frames = ReceiveAll(socket_);
  if (frames.empty()) return;
  const std::string request_id = frames.size() > 1 ? frames[1] : "";
  if (frames.size() < kZapHeaderFrames || frames[0] != "1.0") {
    LOG(ERROR) << "zap: malformed ZAP request of " << frames.size() << " frames";
    Reply(socket_, request_id, "500", "malformed ZAP request", "");
    return;
  }
  const std::string& address = frames[3];
  const std::string& mechanism = frames[5];
  std::string identity;
  if (mechanism == "CURVE" && frames.size() == kZapHeaderFrames + 1 &&
      frames[6].size() == kCurveKeyBytes) {
    char z85[41];
    zmq_z85_encode(z85, reinterpret_cast<const uint8_t*>(frames[6].data()), kCurveKeyBytes);
    auto it = allowed_.find(z85);
    if (it != allowed_.end()) identity = it->second;
  }
  if (identity.empty()) {
    if (refused_) refused_->Increment();
    LOG_EVERY_N(WARNING, 20) << "zap: refused a " << mechanism.substr(0, 16) << " peer at "
                             << address << ": its key is not in the job's allow-list";
    Reply(socket_, request_id, "400", "key not allowed", "");
    return;
  }
  if (accepted_) accepted_->Increment();
  VLOG(1) << "zap: accepted " << identity << " at " << address;
  Reply(socket_, request_id, "200", "OK", identity);
}

}  // namespace towerps::net
