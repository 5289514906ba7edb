#include "ps/ps_node.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/status.h"
#include "glog/logging.h"
#include "ps/checkpoint.h"

namespace towerps::ps {

absl::Status PsNodeOptions::Validate() const {
  if (scheduler_endpoint.empty()) return absl::InvalidArgumentError("scheduler endpoint is empty");
  if (handler_threads < 0) return absl::InvalidArgumentError("handler_threads must be >= 0");
  if (heartbeat_interval_ms <= 0 || scheduler_timeout_ms <= 0) {
    return absl::InvalidArgumentError("heartbeat and scheduler timeouts must be > 0");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<PsNode>> PsNode::Start(const net::ZmqContext* ctx,
                                                      const PsNodeOptions& options,
                                                      MetricsRegistry* metrics) {
  TOWERPS_RETURN_IF_ERROR(options.Validate());
  std::unique_ptr<PsNode> node(new PsNode(options));
  PsNode* raw = node.get();
  net::RpcServerOptions rpc;
  rpc.bind_endpoint = options.bind_endpoint;
  rpc.handler_threads = options.handler_threads;
  rpc.name = "ps";
  TOWERPS_ASSIGN_OR_RETURN(
      node->rpc_, net::RpcServer::Start(
                      ctx, rpc,
                      [raw](const net::wire::Envelope::Reader& r) -> absl::StatusOr<std::string> {
                        ParameterServer* server = raw->ready_.load();
                        if (server == nullptr) {
                          return absl::UnavailableError("parameter server is starting");
                        }
                        return server->Handle(r);
                      },
                      metrics));
  node->endpoint_ = node->rpc_->endpoint();
  if (!options.advertise_host.empty()) {
    // tcp://<bound host>:<port> -> tcp://<advertised host>:<port>
    size_t colon = node->endpoint_.rfind(':');
    node->endpoint_ = absl::StrCat("tcp://", options.advertise_host, node->endpoint_.substr(colon));
  }
  net::RpcClientOptions client = options.scheduler_rpc;
  client.endpoint = options.scheduler_endpoint;
  client.name = "ps";
  TOWERPS_ASSIGN_OR_RETURN(node->scheduler_, net::MembershipClient::Connect(ctx, client));
  TOWERPS_ASSIGN_OR_RETURN(net::ClusterView view,
                           node->scheduler_->Register(net::kRoleServer, options.rank,
                                                      node->endpoint_));
  node->rank_ = view.rank;
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
            << node->server_->dense()->offset() << "+" << node->server_->dense()->size()
            << " at " << node->endpoint_;
  return node;
}

PsNode::~PsNode() {
  if (rpc_) rpc_->Stop();
}

absl::Status PsNode::Run() {
  auto last_contact = std::chrono::steady_clock::now();
  while (!stop_.WaitForNotificationWithTimeout(
      absl::Milliseconds(options_.heartbeat_interval_ms))) {
    auto beat = scheduler_->Heartbeat(net::kRoleServer, rank_);
    if (!beat.ok()) {
      LOG(WARNING) << "ps/" << rank_ << ": heartbeat: " << beat.status();
      if (std::chrono::steady_clock::now() - last_contact >
          std::chrono::milliseconds(options_.scheduler_timeout_ms)) {
        return absl::UnavailableError(absl::StrCat("scheduler unreachable for ",
                                                   options_.scheduler_timeout_ms, " ms"));
      }
      continue;
    }
    last_contact = std::chrono::steady_clock::now();
    if (beat->phase == net::kPhaseDone) {
      LOG(INFO) << "ps/" << rank_ << ": job done at global step " << beat->global_step;
      return absl::OkStatus();
    }
    if (beat->phase == net::kPhaseFailed) return absl::AbortedError("the job failed");
  }
  return absl::CancelledError("stopped");
}

}  // namespace towerps::ps
