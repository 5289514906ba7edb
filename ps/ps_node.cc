#include "ps/ps_node.h"

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/status.h"
#include "glog/logging.h"
#include "net/curve_keys.h"
#include "ps/checkpoint.h"

namespace towerps::ps {

using net::wire::Envelope;

absl::Status PsNodeOptions::Validate() const {
  if (scheduler_endpoint.empty()) return absl::InvalidArgumentError("scheduler endpoint is empty");
  if (handler_threads < 0) return absl::InvalidArgumentError("handler_threads must be >= 0");
  if (stop_grace_ms < 0) return absl::InvalidArgumentError("stop_grace_ms must be >= 0");
  if (heartbeat_interval_ms <= 0 || scheduler_timeout_ms <= 0) {
    return absl::InvalidArgumentError("heartbeat and scheduler timeouts must be > 0");
  }
  if (curve.enabled() != scheduler_rpc.curve.enabled()) {
    return absl::InvalidArgumentError(
        "CURVE keys for the server and the scheduler client go together");
  }
  if (curve.enabled() && rank < 0) {
    return absl::InvalidArgumentError("with CURVE keys a parameter server needs an explicit rank");
  }
  return absl::OkStatus();
}

absl::Status AuthorizePsRequest(const net::Peer& peer, const Envelope::Reader& request) {
  auto body = request.getBody();
  const bool worker = peer.HasRole("worker");
  const bool op = peer.Is(net::kOperatorIdentity);
  switch (body.which()) {
    case Envelope::Body::PULL_SPARSE:
      if (worker || (op && !body.getPullSparse().getCreate())) return absl::OkStatus();
      return net::PermissionDenied(peer, "pull sparse rows (creating them)");
    case Envelope::Body::PULL_DENSE:
      if (worker || op) return absl::OkStatus();
      return net::PermissionDenied(peer, "pull dense parameters");
    case Envelope::Body::PUSH_SPARSE:
    case Envelope::Body::PUSH_DENSE:
      if (worker) return absl::OkStatus();
      return net::PermissionDenied(peer, "push to a parameter server");
    case Envelope::Body::CHECKPOINT:
      if (peer.Is(net::kSchedulerIdentity)) return absl::OkStatus();
      return net::PermissionDenied(peer, "order a checkpoint or a restore");
    default:
      return absl::OkStatus();  // Ping; other kinds are refused by ParameterServer.
  }
}

absl::StatusOr<std::unique_ptr<PsNode>> PsNode::Start(const net::ZmqContext* ctx,
                                                      const PsNodeOptions& options,
                                                      MetricsRegistry* metrics) {
  TOWERPS_RETURN_IF_ERROR(options.Validate());
  std::unique_ptr<PsNode> node(new PsNode(options));
  PsNode* raw = node.get();
  net::RpcServerOptions rpc;
  rpc.bind_endpoint = options.address.BindEndpoint();
  rpc.handler_threads = options.handler_threads;
  rpc.name = "ps";
  rpc.curve = options.curve;
  TOWERPS_ASSIGN_OR_RETURN(
      node->rpc_,
      net::RpcServer::Start(
          ctx, rpc,
          [raw](const net::Peer& peer, const Envelope::Reader& r) -> absl::StatusOr<std::string> {
            TOWERPS_RETURN_IF_ERROR(AuthorizePsRequest(peer, r));
            ParameterServer* server = raw->ready_.load();
            if (server == nullptr) {
              return absl::UnavailableError("parameter server is starting");
            }
            return server->Handle(r);
          },
          metrics));
  TOWERPS_ASSIGN_OR_RETURN(node->endpoint_,
                           options.address.AdvertisedEndpoint(node->rpc_->endpoint()));
  net::RpcClientOptions client = options.scheduler_rpc;
  client.endpoint = options.scheduler_endpoint;
  client.source_host = options.address.source_host;
  client.name = "ps";
  TOWERPS_ASSIGN_OR_RETURN(node->scheduler_, net::MembershipClient::Connect(ctx, client));
  TOWERPS_ASSIGN_OR_RETURN(
      net::ClusterView view,
      node->scheduler_->Register(net::kRoleServer, options.rank, node->endpoint_));
  node->rank_ = view.rank;
  node->job_id_ = view.job_id;
  net::SchedulerWatchOptions watch;
  watch.rpc = client;
  watch.role = net::kRoleServer;
  watch.rank = view.rank;
  watch.heartbeat_interval_ms = options.heartbeat_interval_ms;
  watch.scheduler_timeout_ms = options.scheduler_timeout_ms;
  // A restarted scheduler: this server of the job registers again and keeps its state.
  watch.rejoin = [raw](net::MembershipClient* client) {
    net::Rejoin rejoin;
    rejoin.job_id = raw->job_id_;
    return client->Register(net::kRoleServer, raw->rank_, raw->endpoint_, rejoin).status();
  };
  TOWERPS_ASSIGN_OR_RETURN(node->watch_, net::SchedulerWatch::Start(ctx, watch));
  ParameterServerOptions server = options.server;
  server.rank = view.rank;
  server.num_servers = view.num_servers;
  server.name = absl::StrCat("ps/", view.rank);
  server.job_id = view.job_id;
  TOWERPS_ASSIGN_OR_RETURN(node->server_, ParameterServer::Create(server, metrics));
  // --restore names a directory; a resumed job names only the step of its checkpoint,
  // which lives under this server's own root.
  if (!options.restore_dir.empty()) {
    TOWERPS_RETURN_IF_ERROR(node->server_->LoadCheckpoint(options.restore_dir));
  } else if (view.restore_step >= 0) {
    if (server.checkpoint_root.empty()) {
      return absl::FailedPreconditionError(
          "the job resumes from a checkpoint, but this server has no --run_dir to find it in");
    }
    TOWERPS_RETURN_IF_ERROR(node->server_->LoadCheckpoint(
        CheckpointDir(server.checkpoint_root, view.restore_step), /*require_this_job=*/true));
  }
  node->ready_ = node->server_.get();
  LOG(INFO) << server.name << ": serving " << server.tables.size() << " tables and dense block "
            << node->server_->dense()->offset() << "+" << node->server_->dense()->size() << " at "
            << node->endpoint_;
  return node;
}

PsNode::~PsNode() {
  if (rpc_) rpc_->Stop();
}

absl::Status PsNode::Run() {
  const std::string name = absl::StrCat("ps/", rank_);
  while (!watch_->WaitForEnd(absl::Milliseconds(100))) {
    if (!stop_.HasBeenNotified()) continue;
    LOG(INFO) << name << ": stopping on request; serving until the job ends (at most "
              << options_.stop_grace_ms << " ms; job phase " << net::PhaseName(watch_->phase())
              << ")";
    if (watch_->WaitForEnd(absl::Milliseconds(options_.stop_grace_ms))) {
      LOG(INFO) << name << ": the job ended: "
                << (watch_->status().ok() ? "done" : watch_->status().message());
    }
    return absl::OkStatus();
  }
  absl::Status status = watch_->status();
  if (status.ok()) LOG(INFO) << name << ": the job is done";
  return status;
}

}  // namespace towerps::ps
