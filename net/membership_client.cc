#include "net/membership_client.h"

#include <capnp/message.h>

#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace towerps::net {
namespace {

using wire::Envelope;

absl::Status Expect(const Message& reply, Envelope::Body::Which kind) {
  if (reply.envelope().getBody().which() != kind) {
    return absl::DataLossError("the scheduler answered with another message kind");
  }
  return absl::OkStatus();
}

ClusterView ViewOf(wire::RegisterReply::Reader r) {
  ClusterView v;
  v.rank = r.getRank();
  v.phase = r.getPhase();
  for (auto e : r.getServerEndpoints()) v.server_endpoints.emplace_back(e.cStr());
  v.shard_owners.assign(reinterpret_cast<const char*>(r.getShardOwners().begin()),
                        r.getShardOwners().size());
  v.num_servers = static_cast<int>(r.getNumServers());
  v.num_workers = static_cast<int>(r.getNumWorkers());
  v.num_partitions = static_cast<int>(r.getNumPartitions());
  v.staleness = r.getStaleness();
  v.reason = r.getReason().cStr();
  v.job_id = r.getJobId();
  v.restore_step = r.getRestoreStep();
  v.finished_steps = r.getFinishedSteps();
  v.epoch = r.getEpoch();
  v.rollback_epoch = r.getRollbackEpoch();
  return v;
}

// The learning-rate scale multiplies every base rate: a NaN, negative or > 1 scale
// from the wire would poison or blow up every update, so it is refused here.
absl::StatusOr<ClockView> ClockOf(wire::ClockReply::Reader r) {
  const float scale = r.getLrScale();
  if (!(scale >= 0.0f && scale <= 1.0f)) {
    return absl::DataLossError(absl::StrCat("clock reply carries a learning-rate scale of ",
                                            scale, " (outside [0, 1])"));
  }
  return ClockView{r.getMayStart(), r.getGlobalStep(), scale, r.getPhase(),
                   r.getReason().cStr(), r.getEpoch()};
}

}  // namespace

const char* PhaseName(uint8_t phase) {
  switch (phase) {
    case kPhaseRegistering:
      return "registering";
    case kPhaseTraining:
      return "training";
    case kPhasePaused:
      return "paused";
    case kPhaseDone:
      return "done";
    case kPhaseFailed:
      return "failed";
    case kPhaseStopping:
      return "stopping";
    case kPhaseRecovering:
      return "recovering";
  }
  return "unknown";
}

absl::StatusOr<std::unique_ptr<MembershipClient>> MembershipClient::Connect(
    const ZmqContext* ctx, const RpcClientOptions& options) {
  TOWERPS_ASSIGN_OR_RETURN(auto rpc, RpcClient::Connect(ctx, options));
  return std::unique_ptr<MembershipClient>(new MembershipClient(std::move(rpc)));
}

template <typename Fill>
absl::StatusOr<Message> MembershipClient::Call(Fill&& fill) {
  capnp::MallocMessageBuilder message;
  auto envelope = message.initRoot<Envelope>();
  const uint64_t id = rpc_->NextRequestId();
  InitEnvelope(envelope, rpc_->options().name, id);
  fill(envelope.getBody());
  return rpc_->Call(id, EncodeMessage(message), /*retry=*/true);
}

absl::StatusOr<ClusterView> MembershipClient::Register(uint8_t role, int rank,
                                                       const std::string& endpoint,
                                                       const Rejoin& rejoin) {
  TOWERPS_ASSIGN_OR_RETURN(Message reply, Call([&](Envelope::Body::Builder b) {
                             auto r = b.initRegister();
                             r.setRole(role);
                             r.setRank(rank);
                             r.setEndpoint(endpoint.c_str());
                             r.setJobId(rejoin.job_id);
                             r.setFinishedSteps(rejoin.finished_steps);
                             r.setGlobalStep(rejoin.global_step);
                             auto parts = r.initPartitions(
                                 static_cast<unsigned>(rejoin.partitions.size()));
                             for (size_t i = 0; i < rejoin.partitions.size(); ++i) {
                               auto p = parts[static_cast<unsigned>(i)];
                               p.setId(rejoin.partitions[i].id);
                               p.setOffset(rejoin.partitions[i].offset);
                               p.setDone(rejoin.partitions[i].done);
                             }
                           }));
  TOWERPS_RETURN_IF_ERROR(Expect(reply, Envelope::Body::REGISTER_REPLY));
  return ViewOf(reply.envelope().getBody().getRegisterReply());
}

absl::StatusOr<ClusterView> MembershipClient::Query(uint8_t role, int rank) {
  TOWERPS_ASSIGN_OR_RETURN(Message reply, Call([&](Envelope::Body::Builder b) {
                             auto q = b.initClusterQuery();
                             q.setRole(role);
                             q.setRank(rank);
                           }));
  TOWERPS_RETURN_IF_ERROR(Expect(reply, Envelope::Body::REGISTER_REPLY));
  return ViewOf(reply.envelope().getBody().getRegisterReply());
}

absl::StatusOr<ClusterView> MembershipClient::WaitForCluster(uint8_t role, int rank,
                                                             int64_t timeout_ms, int64_t poll_ms,
                                                             const absl::Notification* stop) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    TOWERPS_ASSIGN_OR_RETURN(ClusterView view, Query(role, rank));
    if (view.phase != kPhaseRegistering) return view;
    if (std::chrono::steady_clock::now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("the cluster did not form within ", timeout_ms, " ms"));
    }
    if (stop != nullptr && stop->WaitForNotificationWithTimeout(absl::Milliseconds(poll_ms))) {
      return absl::CancelledError("stopped while waiting for the cluster");
    }
    if (stop == nullptr) std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
  }
}

absl::StatusOr<ClockView> MembershipClient::Heartbeat(uint8_t role, int rank) {
  TOWERPS_ASSIGN_OR_RETURN(Message reply, Call([&](Envelope::Body::Builder b) {
                             auto h = b.initHeartbeat();
                             h.setRole(role);
                             h.setRank(rank);
                           }));
  TOWERPS_RETURN_IF_ERROR(Expect(reply, Envelope::Body::CLOCK_REPLY));
  return ClockOf(reply.envelope().getBody().getClockReply());
}

absl::StatusOr<ClockView> MembershipClient::Clock(int rank, int64_t finished_steps,
                                                  int64_t next_step, bool finished, int partition,
                                                  int64_t offset, const ClockStats& stats) {
  TOWERPS_ASSIGN_OR_RETURN(Message reply, Call([&](Envelope::Body::Builder b) {
                             auto c = b.initClock();
                             c.setRank(rank);
                             c.setFinishedSteps(finished_steps);
                             c.setNextStep(next_step);
                             c.setFinished(finished);
                             c.setPartition(partition);
                             c.setOffset(offset);
                             c.setLoss(stats.loss);
                             c.setExamples(stats.examples);
                           }));
  TOWERPS_RETURN_IF_ERROR(Expect(reply, Envelope::Body::CLOCK_REPLY));
  return ClockOf(reply.envelope().getBody().getClockReply());
}

absl::StatusOr<PartitionGrant> MembershipClient::Partition(int rank, int partition, int64_t offset,
                                                           bool done) {
  TOWERPS_ASSIGN_OR_RETURN(Message reply, Call([&](Envelope::Body::Builder b) {
                             auto p = b.initPartition();
                             p.setRank(rank);
                             p.setPartition(partition);
                             p.setOffset(offset);
                             p.setDone(done);
                           }));
  TOWERPS_RETURN_IF_ERROR(Expect(reply, Envelope::Body::PARTITION_REPLY));
  auto r = reply.envelope().getBody().getPartitionReply();
  return PartitionGrant{static_cast<int>(r.getPartition()), r.getOffset(), r.getWait()};
}

absl::StatusOr<std::string> MembershipClient::Control(const std::string& command) {
  TOWERPS_ASSIGN_OR_RETURN(Message reply, Call([&](Envelope::Body::Builder b) {
                             b.initControl().setCommand(command.c_str());
                           }));
  TOWERPS_RETURN_IF_ERROR(Expect(reply, Envelope::Body::CONTROL_REPLY));
  return std::string(reply.envelope().getBody().getControlReply().getStatusJson().cStr());
}

}  // namespace towerps::net
