// Test-only helpers: JobState options of a given shape, one request to a scheduler
// over a raw RpcClient (the tests play nodes and operators by building the wire
// messages themselves), and the events a scheduler wrote.
#ifndef TOWERPS_SCHEDULER_TEST_UTIL_H_
#define TOWERPS_SCHEDULER_TEST_UTIL_H_

#include <capnp/message.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_split.h"
#include "common/file_util.h"
#include "gtest/gtest.h"
#include "net/codec.h"
#include "net/transport.h"
#include "nlohmann/json.hpp"
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

// The events of <path> (events.jsonl) named `event`, or all with "" (a failure for a
// line that is not a JSON object with an integer ts_ms and a string event).
inline std::vector<nlohmann::json> ReadEvents(const std::string& path,
                                              const std::string& event = "") {
  std::vector<nlohmann::json> out;
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return out;  // none written yet
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object() || !j["ts_ms"].is_number_integer() ||
        !j["event"].is_string()) {
      ADD_FAILURE() << "bad event line: " << line;
      continue;
    }
    if (event.empty() || j["event"] == event) out.push_back(std::move(j));
  }
  return out;
}

}  // namespace towerps::scheduler

#endif  // TOWERPS_SCHEDULER_TEST_UTIL_H_
