// Test-only helpers: JobState options of a given shape, and one request to a
// scheduler over a raw RpcClient (the tests play nodes and operators by building the
// wire messages themselves).
#ifndef TOWERPS_SCHEDULER_TEST_UTIL_H_
#define TOWERPS_SCHEDULER_TEST_UTIL_H_

#include <capnp/message.h>

#include <functional>

#include "absl/status/statusor.h"
#include "net/codec.h"
#include "net/transport.h"
#include "scheduler/job_state.h"

namespace towerps::scheduler {

// A job of that shape with a 1 s heartbeat timeout (JobState tests).
inline JobStateOptions TestJobOptions(int servers, int workers, int partitions,
                                      int64_t staleness) {
  JobStateOptions o;
  o.num_servers = servers;
  o.num_workers = workers;
  o.num_partitions = partitions;
  o.staleness = staleness;
  o.heartbeat_timeout_ms = 1000;
  return o;
}

// Sends the envelope whose body `fill` sets and returns the reply (or its error).
inline absl::StatusOr<net::Message> CallScheduler(
    net::RpcClient* client, const std::function<void(net::wire::Envelope::Body::Builder)>& fill) {
  capnp::MallocMessageBuilder message;
  auto envelope = message.initRoot<net::wire::Envelope>();
  uint64_t id = client->NextRequestId();
  net::InitEnvelope(envelope, "test", id);
  fill(envelope.getBody());
  return client->Call(id, net::EncodeMessage(message), true);
}

}  // namespace towerps::scheduler

#endif  // TOWERPS_SCHEDULER_TEST_UTIL_H_
