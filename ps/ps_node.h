// A parameter server process: serves ParameterServer over RPC, registers with the
// scheduler, takes its rank (which fixes its dense block), optionally restores its
// shards from a checkpoint, and heartbeats until the job is done.
//
// Threads: the RpcServer's (io + handlers); Run() heartbeats on the caller's thread.
// Requests that arrive before the rank is known get Unavailable (clients retry).
#ifndef TOWERPS_PS_PS_NODE_H_
#define TOWERPS_PS_PS_NODE_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "common/metrics.h"
#include "net/membership_client.h"
#include "net/transport.h"
#include "ps/server.h"

namespace towerps::ps {

struct PsNodeOptions {
  // The scheduler's endpoint. Required.
  std::string scheduler_endpoint;
  // Where to serve; port 0 picks a free one.
  std::string bind_endpoint = "tcp://127.0.0.1:0";
  // Host written into the endpoint registered with the scheduler (empty: as bound).
  // Needed when binding a wildcard address on a multi-host cluster.
  std::string advertise_host;
  // Requested rank, -1 for any.
  int rank = -1;
  int handler_threads = 2;
  // Tables, dense size, optimizer and checkpoint root; rank, num_servers and job_id are
  // filled at registration.
  ParameterServerOptions server;
  // A checkpoint directory to load this server's shards from before serving (an
  // operator's choice: it need not be of this job). Empty: a resumed job's checkpoint,
  // named by its step at registration, is loaded from server.checkpoint_root.
  std::string restore_dir;
  int64_t heartbeat_interval_ms = 1000;
  // Give up when the scheduler is unreachable for this long.
  int64_t scheduler_timeout_ms = 60000;
  net::RpcClientOptions scheduler_rpc;

  absl::Status Validate() const;
};

class PsNode {
 public:
  // Binds, registers and builds the server. ctx and metrics are borrowed.
  static absl::StatusOr<std::unique_ptr<PsNode>> Start(const net::ZmqContext* ctx,
                                                       const PsNodeOptions& options,
                                                       MetricsRegistry* metrics);
  ~PsNode();

  // Heartbeats until the job is done (OK), failed, Stop() is called (Cancelled), or
  // the scheduler stays unreachable (Unavailable).
  absl::Status Run();
  // Makes Run return. Thread-safe, idempotent.
  void Stop() { stop_.Notify(); }

  int rank() const { return rank_; }
  const std::string& endpoint() const { return endpoint_; }

 private:
  explicit PsNode(const PsNodeOptions& options) : options_(options) {}

  const PsNodeOptions options_;
  std::unique_ptr<ParameterServer> server_;
  std::atomic<ParameterServer*> ready_{nullptr};
  std::unique_ptr<net::RpcServer> rpc_;
  std::unique_ptr<net::MembershipClient> scheduler_;
  std::string endpoint_;
  int rank_ = -1;
  absl::Notification stop_;
};

}  // namespace towerps::ps

#endif  // TOWERPS_PS_PS_NODE_H_
