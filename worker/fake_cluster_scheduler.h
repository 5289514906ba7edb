// Test-only: a stand-in scheduler on 127.0.0.1 for the worker's pacing and recovery
// (ClusterPacer) without the real scheduler: it answers heartbeats and clocks with
// its phase and epoch (may_start while training), partition requests from a script,
// and cluster queries and registrations with a view of one server. It can refuse the
// next N requests with an error (a restarted scheduler: NotFound). Records what the
// worker reported. Thread-safe.
#ifndef TOWERPS_WORKER_FAKE_CLUSTER_SCHEDULER_H_
#define TOWERPS_WORKER_FAKE_CLUSTER_SCHEDULER_H_

#include <capnp/message.h>

#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "net/codec.h"
#include "net/membership_client.h"
#include "net/transport.h"
#include "ps/shard_map.h"

namespace towerps::worker {

class FakeClusterScheduler {
 public:
  // What the worker told it last.
  struct Seen {
    int64_t clock_finished = -1;
    int clock_partition = -2;
    int64_t clock_offset = -1;
    float clock_loss = -1;
    int64_t clock_examples = -1;
    int clocks = 0;
    int queries = 0;
    std::vector<net::PartitionState> reports;  // Partition requests with a partition
    net::Rejoin rejoin;                        // the last Register
    int registers = 0;
  };

  explicit FakeClusterScheduler(const net::ZmqContext* ctx) {
    auto server = net::RpcServer::Start(
        ctx, net::RpcServerOptions(),
        [this](const net::Peer&, const net::wire::Envelope::Reader& r) { return Handle(r); },
        nullptr);
    EXPECT_TRUE(server.ok()) << server.status();
    server_ = std::move(server).value();
  }

  const std::string& endpoint() const { return server_->endpoint(); }
  void set_phase(uint8_t phase) {
    absl::MutexLock lock(&mu_);
    phase_ = phase;
  }
  // A new membership epoch; with rollback, rollback_epoch = epoch and the worker's
  // clock restarts at finished_steps.
  void NewEpoch(bool rollback, int64_t finished_steps) {
    absl::MutexLock lock(&mu_);
    ++epoch_;
    if (rollback) rollback_epoch_ = epoch_;
    finished_steps_ = finished_steps;
  }
  void AddGrant(net::PartitionGrant grant) {
    absl::MutexLock lock(&mu_);
    grants_.push_back(grant);
  }
  void FailNext(int n, absl::Status status) {
    absl::MutexLock lock(&mu_);
    fail_next_ = n;
    error_ = std::move(status);
  }
  Seen seen() const {
    absl::MutexLock lock(&mu_);
    return seen_;
  }
  // The view a worker gets (one server at `server_endpoint`).
  net::ClusterView View() const {
    absl::MutexLock lock(&mu_);
    net::ClusterView v;
    v.rank = 0;
    v.phase = phase_;
    v.server_endpoints = {server_endpoint_};
    v.shard_owners = (*ps::ShardMap::Balanced(4, 1)).ToWire();
    v.num_servers = 1;
    v.num_workers = 1;
    v.num_partitions = 2;
    v.staleness = staleness_;
    v.job_id = 77;
    v.epoch = epoch_;
    v.rollback_epoch = rollback_epoch_;
    v.finished_steps = finished_steps_;
    return v;
  }
  // The one parameter server's endpoint in the views.
  void set_server_endpoint(std::string endpoint) {
    absl::MutexLock lock(&mu_);
    server_endpoint_ = std::move(endpoint);
  }
  void set_staleness(int64_t s) {
    absl::MutexLock lock(&mu_);
    staleness_ = s;
  }

 private:
  absl::StatusOr<std::string> Handle(const net::wire::Envelope::Reader& r) {
    absl::MutexLock lock(&mu_);
    if (fail_next_ > 0) {
      --fail_next_;
      return error_;
    }
    capnp::MallocMessageBuilder message;
    auto envelope = message.initRoot<net::wire::Envelope>();
    net::InitEnvelope(envelope, "scheduler", r.getRequestId());
    auto body = r.getBody();
    switch (body.which()) {
      case net::wire::Envelope::Body::CLOCK: {
        auto clock = body.getClock();
        ++seen_.clocks;
        seen_.clock_finished = clock.getFinishedSteps();
        seen_.clock_partition = clock.getPartition();
        seen_.clock_offset = clock.getOffset();
        seen_.clock_loss = clock.getLoss();
        seen_.clock_examples = clock.getExamples();
        FillClock(envelope.getBody().initClockReply(), phase_ == net::kPhaseTraining);
        break;
      }
      case net::wire::Envelope::Body::HEARTBEAT:
        FillClock(envelope.getBody().initClockReply(), false);
        break;
      case net::wire::Envelope::Body::PARTITION: {
        auto p = body.getPartition();
        if (p.getPartition() >= 0) {
          seen_.reports.push_back({p.getPartition(), p.getOffset(), p.getDone()});
        }
        net::PartitionGrant grant;
        if (!grants_.empty()) {
          grant = grants_.front();
          grants_.pop_front();
        }
        auto reply = envelope.getBody().initPartitionReply();
        reply.setPartition(grant.partition);
        reply.setOffset(grant.offset);
        reply.setWait(grant.wait);
        break;
      }
      case net::wire::Envelope::Body::REGISTER: {
        auto reg = body.getRegister();
        ++seen_.registers;
        seen_.rejoin.job_id = reg.getJobId();
        seen_.rejoin.finished_steps = reg.getFinishedSteps();
        seen_.rejoin.global_step = reg.getGlobalStep();
        seen_.rejoin.partitions.clear();
        for (auto p : reg.getPartitions()) {
          seen_.rejoin.partitions.push_back({p.getId(), p.getOffset(), p.getDone()});
        }
        FillView(envelope.getBody().initRegisterReply());
        break;
      }
      case net::wire::Envelope::Body::CLUSTER_QUERY:
        ++seen_.queries;
        FillView(envelope.getBody().initRegisterReply());
        break;
      default:
        return absl::InvalidArgumentError("the fake scheduler does not answer this");
    }
    return net::EncodeMessage(message);
  }
  void FillClock(net::wire::ClockReply::Builder reply, bool may_start)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    reply.setMayStart(may_start);
    reply.setGlobalStep(global_step_++);
    reply.setLrScale(1.0f);
    reply.setPhase(phase_);
    reply.setEpoch(epoch_);
  }
  void FillView(net::wire::RegisterReply::Builder reply) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    reply.setRank(0);
    reply.setPhase(phase_);
    reply.initServerEndpoints(1).set(0, server_endpoint_.c_str());
    const std::string owners = (*ps::ShardMap::Balanced(4, 1)).ToWire();
    reply.setNumVirtualShards(4);
    reply.setShardOwners(capnp::Data::Reader(
        reinterpret_cast<const kj::byte*>(owners.data()), owners.size()));
    reply.setNumWorkers(1);
    reply.setNumServers(1);
    reply.setNumPartitions(2);
    reply.setStaleness(staleness_);
    reply.setJobId(77);
    reply.setFinishedSteps(finished_steps_);
    reply.setEpoch(epoch_);
    reply.setRollbackEpoch(rollback_epoch_);
  }

  mutable absl::Mutex mu_;
  uint8_t phase_ ABSL_GUARDED_BY(mu_) = net::kPhaseTraining;
  uint64_t epoch_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t rollback_epoch_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t finished_steps_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t global_step_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t staleness_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<net::PartitionGrant> grants_ ABSL_GUARDED_BY(mu_);
  int fail_next_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  Seen seen_ ABSL_GUARDED_BY(mu_);
  std::string server_endpoint_ ABSL_GUARDED_BY(mu_) = "tcp://127.0.0.1:9";
  std::unique_ptr<net::RpcServer> server_;
};

}  // namespace towerps::worker

#endif  // TOWERPS_WORKER_FAKE_CLUSTER_SCHEDULER_H_
