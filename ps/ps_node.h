// A parameter server process: serves ParameterServer over RPC, registers with the
// scheduler, takes its rank (which fixes its dense block), optionally restores its
// shards from a checkpoint, and follows the job's phase (net::SchedulerWatch) until
// the job is over.
//
// Threads: the RpcServer's (io + handlers) and the watch's "sched-watch" (started
// right after registration, so a long restore still heartbeats); Run() waits on the
// caller's thread.
// Requests that arrive before the server is built get Unavailable: clients retry,
// and so does the scheduler's restore order to a replacement (scheduler/recovery.h).
//
// Recovery (docs/distributed.md): a new process registers with job id 0 (a
// replacement for a dead rank is then ordered by the scheduler to restore its files
// of the newest checkpoint, through the Checkpoint handler; a restored dense block
// counts as set, so worker 0's assignment is ignored). When a restarted scheduler
// does not know this node (NotFound), the watch registers it again with the job's
// id and its endpoint: it keeps its state. Refused (declared dead, replaced by a new
// process, another job), Run() returns Aborted: the process must exit.
#ifndef TOWERPS_PS_PS_NODE_H_
#define TOWERPS_PS_PS_NODE_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "common/metrics.h"
#include "net/address.h"
#include "net/membership_client.h"
#include "net/scheduler_watch.h"
#include "net/transport.h"
#include "ps/server.h"

namespace towerps::ps {

struct PsNodeOptions {
  // The scheduler's endpoint. Required.
  std::string scheduler_endpoint;
  // Where to serve (address.BindEndpoint(); port 0 picks a free one), the host of the
  // endpoint registered with the scheduler (tcp://<advertise_host>:<bound port>) and
  // where the connection to the scheduler leaves from (scheduler_rpc.source_host is
  // set from address.source_host). Default: 127.0.0.1, any port.
  net::NodeAddress address;
  // Requested rank, -1 for any (not with CURVE: the key names the rank).
  int rank = -1;
  // CURVE server keys of this node (ps/<rank>'s pair); empty: insecure. Set together
  // with scheduler_rpc.curve (the same pair plus the scheduler's public key).
  net::CurveKeys curve;
  int handler_threads = 2;
  // Tables, dense size, optimizer and checkpoint root; rank, num_servers and job_id are
  // filled at registration.
  ParameterServerOptions server;
  // A checkpoint directory to load this server's shards from before serving (an
  // operator's choice: it need not be of this job). Empty: a resumed job's checkpoint,
  // named by its step at registration, is loaded from server.checkpoint_root.
  std::string restore_dir;
  // After Stop() (SIGTERM): keep serving until the job ends, at most this long,
  // milliseconds (>= 0). When every process of a job is signalled at once (Slurm,
  // Kubernetes), the scheduler's final checkpoint still reaches this server.
  int64_t stop_grace_ms = 20000;
  int64_t heartbeat_interval_ms = 1000;
  // Give up when the scheduler has not answered for this long (> heartbeat): the time
  // a restarted scheduler has to come back.
  int64_t scheduler_timeout_ms = 60000;
  net::RpcClientOptions scheduler_rpc;

  absl::Status Validate() const;
};

// OK when `peer` may send `request` to a parameter server: with CURVE on, pulls and
// pushes only from workers ("operator" may pull: sparse without creating rows, and
// dense), checkpoints and restores only from "scheduler". PermissionDenied otherwise.
absl::Status AuthorizePsRequest(const net::Peer& peer, const net::wire::Envelope::Reader& request);

class PsNode {
 public:
  // Binds, registers and builds the server. ctx and metrics are borrowed.
  static absl::StatusOr<std::unique_ptr<PsNode>> Start(const net::ZmqContext* ctx,
                                                       const PsNodeOptions& options,
                                                       MetricsRegistry* metrics);
  ~PsNode();

  // Blocks until the job is done (OK), the job failed (Aborted "the job failed:
  // <the scheduler's reason>"), the scheduler refused this node (Aborted) or has not
  // answered for scheduler_timeout_ms (Aborted, naming its endpoint); after Stop(),
  // until one of those or stop_grace_ms, and then returns OK.
  absl::Status Run();
  // Makes Run return within stop_grace_ms (SIGTERM); the destructor then answers
  // the requests already received and stops serving. Thread-safe, idempotent.
  void Stop() {
    if (!stop_requested_.exchange(true)) stop_.Notify();
  }

  int rank() const { return rank_; }
  const std::string& endpoint() const { return endpoint_; }

 private:
  explicit PsNode(const PsNodeOptions& options) : options_(options) {}

  const PsNodeOptions options_;
  std::unique_ptr<ParameterServer> server_;
  std::atomic<ParameterServer*> ready_{nullptr};
  std::unique_ptr<net::RpcServer> rpc_;
  std::unique_ptr<net::MembershipClient> scheduler_;
  std::unique_ptr<net::SchedulerWatch> watch_;
  std::string endpoint_;
  int rank_ = -1;
  uint64_t job_id_ = 0;  // set at registration
  std::atomic<bool> stop_requested_{false};
  absl::Notification stop_;
};

}  // namespace towerps::ps

#endif  // TOWERPS_PS_PS_NODE_H_
