#include "scheduler/scheduler.h"

#include <pthread.h>

#include <capnp/message.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/file_util.h"
#include "common/json.h"
#include "common/status.h"
#include "glog/logging.h"
#include "ps/checkpoint.h"
#include "ps/shard_map.h"

namespace towerps::scheduler {
namespace {

using net::wire::Envelope;

absl::StatusOr<Role> RoleFromWire(uint8_t role) {
  if (role > 1) return absl::InvalidArgumentError(absl::StrCat("unknown role ", role));
  return static_cast<Role>(role);
}

}  // namespace

absl::Status SchedulerOptions::Validate() const {
  TOWERPS_RETURN_IF_ERROR(job.Validate());
  if (num_virtual_shards < static_cast<uint32_t>(job.num_servers)) {
    return absl::InvalidArgumentError("num_virtual_shards must be >= num_servers");
  }
  if (!resume_from.empty() && checkpoint_root.empty()) {
    return absl::InvalidArgumentError("resume_from needs a checkpoint_root");
  }
  if (monitor_interval_ms <= 0) {
    return absl::InvalidArgumentError("monitor_interval_ms must be > 0");
  }
  TOWERPS_RETURN_IF_ERROR(lr_scale.Validate());
  return rpc.Validate();
}

Scheduler::Scheduler(const SchedulerOptions& options, const net::ZmqContext* ctx,
                     MetricsRegistry* metrics, const Clock* clock, models::LrSchedule lr)
    : options_(options), ctx_(ctx), clock_(clock), lr_(std::move(lr)), job_(options.job) {
  if (metrics != nullptr) {
    global_step_metric_ = metrics->GetGauge("towerps_scheduler_global_step");
    lr_scale_metric_ = metrics->GetGauge("towerps_scheduler_lr_scale");
    live_workers_metric_ = metrics->GetGauge("towerps_scheduler_live_workers");
    dead_nodes_metric_ = metrics->GetCounter("towerps_scheduler_dead_nodes_total");
    checkpoints_metric_ = metrics->GetCounter("towerps_scheduler_checkpoints_total");
  }
}

absl::StatusOr<std::unique_ptr<Scheduler>> Scheduler::Start(const net::ZmqContext* ctx,
                                                             const SchedulerOptions& options,
                                                             MetricsRegistry* metrics,
                                                             const Clock* clock) {
  TOWERPS_RETURN_IF_ERROR(options.Validate());
  TOWERPS_ASSIGN_OR_RETURN(models::LrSchedule lr, models::LrSchedule::Create(options.lr_scale));
  TOWERPS_ASSIGN_OR_RETURN(ps::ShardMap map, ps::ShardMap::Balanced(options.num_virtual_shards,
                                                                    options.job.num_servers));
  std::unique_ptr<Scheduler> scheduler(new Scheduler(options, ctx, metrics, clock, std::move(lr)));
  scheduler->shard_owners_ = map.ToWire();
  scheduler->job_id_ = ps::NewJobId();
  if (!options.resume_from.empty()) {
    TOWERPS_ASSIGN_OR_RETURN(ps::CheckpointManifest manifest,
                             ps::VerifyCheckpoint(options.resume_from));
    // Servers are told only the step: the checkpoint must be where they look for it.
    TOWERPS_RETURN_IF_ERROR(
        ps::CheckpointStepUnder(options.checkpoint_root, options.resume_from).status());
    if (manifest.num_servers != options.job.num_servers ||
        manifest.num_virtual_shards != options.num_virtual_shards ||
        manifest.dense_params != options.dense_params) {
      return absl::InvalidArgumentError(absl::StrCat(
          options.resume_from, " was written by a job of ", manifest.num_servers,
          " servers, ", manifest.num_virtual_shards, " virtual shards and ",
          manifest.dense_params, " dense parameters; this one has ", options.job.num_servers,
          ", ", options.num_virtual_shards, " and ", options.dense_params));
    }
    absl::MutexLock lock(&scheduler->mu_);
    TOWERPS_RETURN_IF_ERROR(Annotate(
        scheduler->job_.RestoreProgress(manifest.step, manifest.partitions),
        absl::StrCat("resume from ", options.resume_from)));
    // The resumed job is the same job: its files stay bound to the checkpoint's id.
    scheduler->job_id_ = manifest.job_id;
    scheduler->restore_step_ = manifest.step;
    LOG(INFO) << "scheduler: resuming from " << options.resume_from << " at global step "
              << manifest.step;
  }
  Scheduler* raw = scheduler.get();
  TOWERPS_ASSIGN_OR_RETURN(
      scheduler->rpc_,
      net::RpcServer::Start(
          ctx, options.rpc, [raw](const Envelope::Reader& r) { return raw->Handle(r); },
          metrics));
  scheduler->monitor_ = std::thread([raw] { raw->MonitorLoop(); });
  LOG(INFO) << absl::StrFormat("scheduler: job %016x", scheduler->job_id_);
  LOG(INFO) << "scheduler: waiting for " << options.job.num_servers << " servers and "
            << options.job.num_workers << " workers at " << scheduler->endpoint();
  return scheduler;
}

Scheduler::~Scheduler() { Stop(); }

void Scheduler::Stop() {
  if (stopped_.exchange(true)) return;
  stop_.Notify();
  if (monitor_.joinable()) monitor_.join();
  if (rpc_) rpc_->Stop();
}

absl::Status Scheduler::WaitUntilDone() {
  done_.WaitForNotification();
  absl::MutexLock lock(&mu_);
  return final_status_;
}

float Scheduler::LrScaleLocked() const {
  return static_cast<float>(lr_.LrAt(job_.global_step()));
}

void Scheduler::FillCluster(net::wire::RegisterReply::Builder reply) {
  reply.setPhase(static_cast<uint8_t>(job_.phase()));
  reply.setNumWorkers(static_cast<uint32_t>(job_.workers().size()));
  reply.setNumServers(static_cast<uint32_t>(job_.servers().size()));
  reply.setNumPartitions(static_cast<uint32_t>(job_.partitions().size()));
  reply.setStaleness(options_.job.staleness);
  reply.setNumVirtualShards(options_.num_virtual_shards);
  reply.setJobId(job_id_);
  reply.setRestoreStep(restore_step_);
  if (job_.phase() == Phase::kRegistering) return;
  auto endpoints = reply.initServerEndpoints(static_cast<unsigned>(job_.servers().size()));
  for (size_t s = 0; s < job_.servers().size(); ++s) {
    endpoints.set(static_cast<unsigned>(s), job_.servers()[s].endpoint.c_str());
  }
  reply.setShardOwners(capnp::Data::Reader(
      reinterpret_cast<const kj::byte*>(shard_owners_.data()), shard_owners_.size()));
}

absl::StatusOr<std::string> Scheduler::Handle(const Envelope::Reader& request) {
  capnp::MallocMessageBuilder message;
  auto reply = message.initRoot<Envelope>();
  net::InitEnvelope(reply, "scheduler", request.getRequestId());
  const int64_t now = clock_->NowMicros() / 1000;
  absl::MutexLock lock(&mu_);
  auto body = request.getBody();
  switch (body.which()) {
    case Envelope::Body::REGISTER: {
      auto r = body.getRegister();
      TOWERPS_ASSIGN_OR_RETURN(Role role, RoleFromWire(r.getRole()));
      TOWERPS_ASSIGN_OR_RETURN(int rank,
                               job_.Register(role, r.getRank(), r.getEndpoint().cStr(), now));
      auto out = reply.getBody().initRegisterReply();
      out.setRank(rank);
      FillCluster(out);
      break;
    }
    case Envelope::Body::CLUSTER_QUERY: {
      auto out = reply.getBody().initRegisterReply();
      out.setRank(body.getClusterQuery().getRank());
      FillCluster(out);
      break;
    }
    case Envelope::Body::HEARTBEAT: {
      auto h = body.getHeartbeat();
      TOWERPS_ASSIGN_OR_RETURN(Role role, RoleFromWire(h.getRole()));
      TOWERPS_RETURN_IF_ERROR(job_.Heartbeat(role, h.getRank(), now));
      auto out = reply.getBody().initClockReply();
      out.setGlobalStep(job_.global_step());
      out.setLrScale(LrScaleLocked());
      out.setPhase(static_cast<uint8_t>(job_.phase()));
      break;
    }
    case Envelope::Body::CLOCK: {
      auto c = body.getClock();
      TOWERPS_RETURN_IF_ERROR(job_.ReportClock(c.getRank(), c.getFinishedSteps(), now));
      if (c.getFinished()) TOWERPS_RETURN_IF_ERROR(job_.MarkWorkerFinished(c.getRank()));
      auto out = reply.getBody().initClockReply();
      out.setMayStart(job_.MayStartStep(c.getRank(), c.getNextStep()));
      out.setGlobalStep(job_.global_step());
      out.setLrScale(LrScaleLocked());
      out.setPhase(static_cast<uint8_t>(job_.phase()));
      if (global_step_metric_) global_step_metric_->Set(static_cast<double>(job_.global_step()));
      break;
    }
    case Envelope::Body::PARTITION: {
      auto p = body.getPartition();
      if (p.getPartition() >= 0) {
        TOWERPS_RETURN_IF_ERROR(
            job_.ReportPartition(p.getRank(), p.getPartition(), p.getOffset(), p.getDone()));
      }
      auto out = reply.getBody().initPartitionReply();
      auto next = job_.NextPartition(p.getRank());
      out.setPartition(next ? next->id : -1);
      out.setOffset(next ? next->resume_offset : 0);
      break;
    }
    case Envelope::Body::CONTROL: {
      std::string command = body.getControl().getCommand().cStr();
      if (command == "pause") {
        TOWERPS_RETURN_IF_ERROR(job_.Pause());
      } else if (command == "resume") {
        TOWERPS_RETURN_IF_ERROR(job_.Resume());
      } else if (command == "checkpoint") {
        if (options_.checkpoint_root.empty()) {
          return absl::FailedPreconditionError("this job has no --checkpoint_root");
        }
        checkpoint_requested_ = true;
      } else if (command == "stop") {
        LOG(INFO) << "scheduler: stop requested by ctl";
        FinishLocked(Phase::kDone, absl::OkStatus());
      } else if (command != "status") {
        return absl::InvalidArgumentError(absl::StrCat(
            "unknown command '", command, "' (status, pause, resume, checkpoint, stop)"));
      }
      reply.getBody().initControlReply().setStatusJson(StatusJsonLocked().c_str());
      break;
    }
    case Envelope::Body::PING:
      reply.getBody().initPong().setNonce(body.getPing().getNonce());
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat("the scheduler does not serve message kind ",
                                                     static_cast<int>(body.which())));
  }
  return net::EncodeMessage(message);
}

void Scheduler::FinishLocked(Phase phase, absl::Status status) {
  if (done_.HasBeenNotified()) return;
  job_.SetPhase(phase);
  final_status_ = std::move(status);
  done_.Notify();
}

std::string Scheduler::StatusJson() {
  absl::MutexLock lock(&mu_);
  return StatusJsonLocked();
}

std::string Scheduler::StatusJsonLocked() {
  auto nodes = [](const std::vector<NodeInfo>& list, bool workers) {
    std::string out = "[";
    for (const NodeInfo& n : list) {
      JsonObject o;
      o.Add("rank", n.rank).Add("alive", n.alive);
      if (workers) {
        o.Add("steps", n.finished_steps).Add("finished", n.finished);
      } else {
        o.Add("endpoint", n.endpoint);
      }
      if (out.size() > 1) out += ",";
      out += o.ToString();
    }
    return out + "]";
  };
  int done = 0;
  for (const PartitionInfo& p : job_.partitions()) done += p.done ? 1 : 0;
  JsonObject o;
  o.Add("phase", PhaseName(job_.phase()))
      .Add("global_step", job_.global_step())
      .Add("lr_scale", static_cast<double>(LrScaleLocked()))
      .Add("staleness", options_.job.staleness)
      .AddRaw("servers", nodes(job_.servers(), false))
      .AddRaw("workers", nodes(job_.workers(), true))
      .Add("partitions_done", done)
      .Add("partitions", static_cast<int64_t>(job_.partitions().size()))
      .Add("last_checkpoint", last_checkpoint_dir_);
  return o.ToString();
}

absl::Status Scheduler::RunCheckpoint(int64_t step) {
  std::string dir = ps::CheckpointDir(options_.checkpoint_root, step);
  TOWERPS_RETURN_IF_ERROR(CreateDirectories(dir));
  if (ps_client_ == nullptr) {
    ps::PsClientOptions client;
    {
      absl::MutexLock lock(&mu_);
      for (const NodeInfo& n : job_.servers()) client.server_endpoints.push_back(n.endpoint);
    }
    client.rpc = options_.ps_rpc;
    client.rpc.name = "scheduler";
    client.dense_params = options_.dense_params;
    TOWERPS_ASSIGN_OR_RETURN(ps::ShardMap map,
                             ps::ShardMap::FromWire(shard_owners_, options_.job.num_servers));
    TOWERPS_ASSIGN_OR_RETURN(ps_client_, ps::PsClient::Create(ctx_, client, std::move(map)));
  }
  TOWERPS_ASSIGN_OR_RETURN(std::vector<ps::CheckpointFile> files,
                           ps_client_->Checkpoint(step, job_id_, /*restore=*/false));
  ps::CheckpointManifest manifest;
  manifest.job_id = job_id_;
  manifest.step = step;
  manifest.num_servers = options_.job.num_servers;
  manifest.num_virtual_shards = options_.num_virtual_shards;
  manifest.dense_params = options_.dense_params;
  manifest.files = std::move(files);
  {
    absl::MutexLock lock(&mu_);
    for (const PartitionInfo& p : job_.partitions()) {
      manifest.partitions.push_back({p.id, p.resume_offset, p.done});
    }
  }
  TOWERPS_RETURN_IF_ERROR(ps::WriteManifest(dir, manifest));
  LOG(INFO) << "scheduler: checkpoint at step " << step << " written to " << dir;
  if (checkpoints_metric_) checkpoints_metric_->Increment();
  absl::MutexLock lock(&mu_);
  last_checkpoint_dir_ = dir;
  return absl::OkStatus();
}

void Scheduler::MonitorLoop() {
  pthread_setname_np(pthread_self(), "sched-monitor");
  while (!stop_.WaitForNotificationWithTimeout(absl::Milliseconds(options_.monitor_interval_ms))) {
    const int64_t now = clock_->NowMicros() / 1000;
    bool checkpoint = false;
    bool final_checkpoint = false;
    int64_t step = 0;
    {
      absl::MutexLock lock(&mu_);
      if (done_.HasBeenNotified()) continue;
      for (const NodeInfo& dead : job_.DetectFailures(now)) {
        if (dead_nodes_metric_) dead_nodes_metric_->Increment();
        LOG(ERROR) << "scheduler: " << RoleName(dead.role) << " " << dead.rank << " is dead";
        if (dead.role == Role::kServer) {
          // Its shards exist only in the last checkpoint: the job stops, to be
          // continued from there (towerps scheduler --resume, deploy/local.sh --resume).
          FinishLocked(Phase::kFailed,
                       absl::UnavailableError(absl::StrCat(
                           "parameter server ", dead.rank,
                           " is dead; continue the job from its last checkpoint (",
                           last_checkpoint_dir_.empty() ? "none yet" : last_checkpoint_dir_,
                           ") with --resume")));
        }
      }
      if (done_.HasBeenNotified()) continue;
      int live = 0;
      for (const NodeInfo& w : job_.workers()) live += w.alive ? 1 : 0;
      if (live_workers_metric_) live_workers_metric_->Set(live);
      if (lr_scale_metric_) lr_scale_metric_->Set(LrScaleLocked());
      step = job_.global_step();
      const bool training = job_.phase() == Phase::kTraining || job_.phase() == Phase::kPaused;
      if (training && job_.AllWorkersFinished()) {
        final_checkpoint = !options_.checkpoint_root.empty();
        if (!final_checkpoint) FinishLocked(Phase::kDone, absl::OkStatus());
      } else if (!options_.checkpoint_root.empty() &&
                 (job_.CheckpointDue(now) || (checkpoint_requested_ && training))) {
        checkpoint = true;
        checkpoint_requested_ = false;
        job_.CheckpointStarted();
      }
    }
    if (checkpoint || final_checkpoint) {
      absl::Status status = RunCheckpoint(step);
      absl::MutexLock lock(&mu_);
      if (!status.ok()) LOG(ERROR) << "scheduler: checkpoint at step " << step << ": " << status;
      if (checkpoint) job_.CheckpointFinished(step, now);
      if (final_checkpoint) {
        FinishLocked(status.ok() ? Phase::kDone : Phase::kFailed, status);
      }
    }
  }
}

}  // namespace towerps::scheduler
