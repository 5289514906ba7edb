#include "scheduler/scheduler.h"

#include <capnp/message.h>
#include <pthread.h>

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/file_util.h"
#include "common/json.h"
#include "common/status.h"
#include "glog/logging.h"
#include "net/curve_keys.h"
#include "net/membership_client.h"
#include "ps/checkpoint.h"
#include "ps/shard_map.h"

namespace towerps::scheduler {
using net::wire::Envelope;

absl::Status SchedulerOptions::Validate() const {
  TOWERPS_RETURN_IF_ERROR(job.Validate());
  if (num_virtual_shards < static_cast<uint32_t>(job.num_servers)) {
    return absl::InvalidArgumentError("num_virtual_shards must be >= num_servers");
  }
  if (!resume_from.empty() && checkpoint_root.empty()) {
    return absl::InvalidArgumentError("resume_from needs a checkpoint_root");
  }
  if (monitor_interval_ms <= 0 || stop_timeout_ms <= 0 || recovery_timeout_ms <= 0) {
    return absl::InvalidArgumentError(
        "monitor_interval_ms, stop_timeout_ms and recovery_timeout_ms must be > 0");
  }
  if (recover && job_file.empty()) return absl::InvalidArgumentError("recover needs a job_file");
  if (planned_steps < 0) return absl::InvalidArgumentError("planned_steps must be >= 0");
  if (keep_full_checkpoints < 0) {
    return absl::InvalidArgumentError("keep_full_checkpoints must be >= 0");
  }
  TOWERPS_RETURN_IF_ERROR(lr_scale.Validate());
  if (rpc.curve.enabled() != ps_rpc.curve.enabled() ||
      (ps_rpc.curve.enabled() &&
       server_public_keys.size() != static_cast<size_t>(job.num_servers))) {
    return absl::InvalidArgumentError(
        "CURVE needs rpc.curve, ps_rpc.curve and one public key per server together");
  }
  return rpc.Validate();
}

Scheduler::Scheduler(const SchedulerOptions& options, const net::ZmqContext* ctx,
                     MetricsRegistry* metrics, const Clock* clock, models::LrSchedule lr)
    : options_(options),
      ctx_(ctx),
      clock_(clock),
      lr_(std::move(lr)),
      job_(options.job),
      progress_(options.job.num_workers),
      start_ms_(clock->NowMicros() / 1000) {
  if (metrics != nullptr) {
    global_step_metric_ = metrics->GetGauge("towerps_scheduler_global_step");
    lr_scale_metric_ = metrics->GetGauge("towerps_scheduler_lr_scale");
    live_workers_metric_ = metrics->GetGauge("towerps_scheduler_live_workers");
    dead_nodes_metric_ = metrics->GetCounter("towerps_scheduler_dead_nodes_total");
    checkpoints_metric_ = metrics->GetCounter("towerps_scheduler_checkpoints_total");
    recoveries_metric_ = metrics->GetCounter("towerps_scheduler_recoveries_total");
    lost_steps_metric_ = metrics->GetCounter("towerps_scheduler_recovery_lost_steps_total");
    recovery_seconds_metric_ = metrics->GetHistogram("towerps_scheduler_recovery_seconds");
    planned_steps_metric_ = metrics->GetGauge("towerps_scheduler_planned_steps");
    planned_steps_metric_->Set(static_cast<double>(options.planned_steps));
    clock_spread_metric_ = metrics->GetGauge("towerps_scheduler_clock_spread_steps");
  }
}

absl::StatusOr<std::unique_ptr<Scheduler>> Scheduler::Start(const net::ZmqContext* ctx,
                                                            const SchedulerOptions& given,
                                                            MetricsRegistry* metrics,
                                                            const Clock* clock) {
  TOWERPS_RETURN_IF_ERROR(given.Validate());
  SchedulerOptions options = given;
  std::optional<JobFile> adopted;
  if (options.recover) {
    absl::StatusOr<JobFile> file = ReadJobFile(options.job_file);
    if (file.ok() && file->state == "running") {
      adopted = *file;
      options.rpc.bind_endpoint = file->endpoint;  // where its nodes look for it
    } else if (!file.ok() && !absl::IsNotFound(file.status())) {
      return file.status();
    } else {
      LOG(INFO) << "scheduler: no running job in " << options.job_file << "; a new job";
    }
  }
  TOWERPS_ASSIGN_OR_RETURN(models::LrSchedule lr, models::LrSchedule::Create(options.lr_scale));
  TOWERPS_ASSIGN_OR_RETURN(ps::ShardMap map, ps::ShardMap::Balanced(options.num_virtual_shards,
                                                                    options.job.num_servers));
  std::unique_ptr<Scheduler> scheduler(new Scheduler(options, ctx, metrics, clock, std::move(lr)));
  scheduler->shard_owners_ = map.ToWire();
  scheduler->job_id_ = ps::NewJobId();
  scheduler->start_us_ = clock->NowMicros();
  if (!options.events_path.empty()) {
    TOWERPS_ASSIGN_OR_RETURN(scheduler->events_, EventLog::Create({options.events_path}, clock));
  }
  if (adopted) {
    TOWERPS_RETURN_IF_ERROR(scheduler->AdoptJob(*adopted));
  } else if (!options.resume_from.empty()) {
    TOWERPS_ASSIGN_OR_RETURN(ps::CheckpointManifest manifest,
                             ps::VerifyCheckpoint(options.resume_from));
    // Servers are told only the step: the checkpoint must be where they look for it.
    TOWERPS_RETURN_IF_ERROR(
        ps::CheckpointStepUnder(options.checkpoint_root, options.resume_from).status());
    if (manifest.num_servers != options.job.num_servers ||
        manifest.num_virtual_shards != options.num_virtual_shards ||
        manifest.dense_params != options.dense_params) {
      return absl::InvalidArgumentError(absl::StrCat(
          options.resume_from, " was written by a job of ", manifest.num_servers, " servers, ",
          manifest.num_virtual_shards, " virtual shards and ", manifest.dense_params,
          " dense parameters; this one has ", options.job.num_servers, ", ",
          options.num_virtual_shards, " and ", options.dense_params));
    }
    absl::MutexLock lock(&scheduler->mu_);
    TOWERPS_RETURN_IF_ERROR(
        Annotate(scheduler->job_.RestoreProgress(manifest.step, manifest.partitions),
                 absl::StrCat("resume from ", options.resume_from)));
    // The resumed job is the same job: its files stay bound to the checkpoint's id.
    scheduler->job_id_ = manifest.job_id;
    scheduler->restore_step_ = manifest.step;
    LOG(INFO) << "scheduler: resuming from " << options.resume_from << " at global step "
              << manifest.step;
  }
  {
    absl::MutexLock lock(&scheduler->mu_);
    scheduler->job_.set_job_id(scheduler->job_id_);
  }
  Scheduler* raw = scheduler.get();
  // An adopted job's endpoint may still be held for a moment by its previous
  // scheduler (a socket closing): binding is retried for up to 10 s.
  const absl::Time bind_deadline = absl::Now() + absl::Seconds(adopted ? 10 : 0);
  while (true) {
    auto rpc = net::RpcServer::Start(
        ctx, options.rpc,
        [raw](const net::Peer& peer, const Envelope::Reader& r) { return raw->Handle(peer, r); },
        metrics);
    if (rpc.ok()) {
      scheduler->rpc_ = std::move(rpc).value();
      break;
    }
    if (absl::IsInvalidArgument(rpc.status()) || absl::Now() >= bind_deadline) {
      return rpc.status();
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  if (!options.job_file.empty()) {
    absl::MutexLock lock(&scheduler->mu_);
    scheduler->job_file_epoch_ = scheduler->job_.epoch();
    TOWERPS_RETURN_IF_ERROR(WriteJobFile(
        options.job_file,
        {scheduler->job_id_, scheduler->endpoint(), "running", scheduler->job_.epoch()}));
  }
  {
    absl::MutexLock lock(&scheduler->mu_);
    scheduler->LogJobStartLocked(adopted.has_value());
  }
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

float Scheduler::LrScaleLocked() const { return static_cast<float>(lr_.LrAt(job_.global_step())); }

void Scheduler::FillCluster(net::wire::RegisterReply::Builder reply, Role role, int rank) {
  reply.setPhase(static_cast<uint8_t>(job_.phase()));
  reply.setNumWorkers(static_cast<uint32_t>(job_.workers().size()));
  reply.setNumServers(static_cast<uint32_t>(job_.servers().size()));
  reply.setNumPartitions(static_cast<uint32_t>(job_.partitions().size()));
  reply.setStaleness(options_.job.staleness);
  reply.setNumVirtualShards(options_.num_virtual_shards);
  reply.setReason(PhaseReasonLocked().c_str());
  reply.setJobId(job_id_);
  // Servers load restoreStep at start only while the job registers (a resumed or
  // adopted job); later a replacement is restored by order. Workers read it as the
  // step of the latest rollback.
  reply.setRestoreStep(job_.phase() == Phase::kRegistering ? restore_step_ : job_.rollback_step());
  reply.setEpoch(job_.epoch());
  reply.setRollbackEpoch(job_.rollback_epoch());
  if (role == Role::kWorker && rank >= 0 && rank < static_cast<int>(job_.workers().size())) {
    reply.setFinishedSteps(job_.workers()[rank].finished_steps);
  }
  if (job_.phase() == Phase::kRegistering) return;
  auto endpoints = reply.initServerEndpoints(static_cast<unsigned>(job_.servers().size()));
  for (size_t s = 0; s < job_.servers().size(); ++s) {
    endpoints.set(static_cast<unsigned>(s), job_.servers()[s].endpoint.c_str());
  }
  reply.setShardOwners(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(shard_owners_.data()),
                                           shard_owners_.size()));
}

absl::StatusOr<std::string> Scheduler::Handle(const net::Peer& peer,
                                              const Envelope::Reader& request) {
  TOWERPS_RETURN_IF_ERROR(AuthorizeSchedulerRequest(peer, request));
  capnp::MallocMessageBuilder message;
  auto reply = message.initRoot<Envelope>();
  net::InitEnvelope(reply, "scheduler", request.getRequestId());
  const int64_t now = clock_->NowMicros() / 1000;
  absl::MutexLock lock(&mu_);
  auto body = request.getBody();
  switch (body.which()) {
    case Envelope::Body::REGISTER:
      TOWERPS_RETURN_IF_ERROR(HandleRegister(body.getRegister(), now, reply));
      break;
    case Envelope::Body::CLUSTER_QUERY: {
      auto q = body.getClusterQuery();
      TOWERPS_ASSIGN_OR_RETURN(Role role, RoleFromWire(q.getRole()));
      if (role == Role::kWorker) job_.AckEpoch(q.getRank());
      auto out = reply.getBody().initRegisterReply();
      out.setRank(q.getRank());
      FillCluster(out, role, q.getRank());
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
      out.setReason(PhaseReasonLocked().c_str());
      out.setEpoch(job_.epoch());
      break;
    }
    case Envelope::Body::CLOCK: {
      auto c = body.getClock();
      TOWERPS_RETURN_IF_ERROR(job_.ReportClock(c.getRank(), c.getFinishedSteps(), now,
                                               c.getPartition(), c.getOffset()));
      progress_.Report(c.getRank(), c.getLoss(), c.getExamples(), job_.global_step(), now);
      if (c.getFinished()) TOWERPS_RETURN_IF_ERROR(job_.MarkWorkerFinished(c.getRank()));
      auto out = reply.getBody().initClockReply();
      out.setMayStart(job_.RequestStep(c.getRank(), c.getNextStep()));
      out.setGlobalStep(job_.global_step());
      out.setLrScale(LrScaleLocked());
      out.setPhase(static_cast<uint8_t>(job_.phase()));
      out.setReason(PhaseReasonLocked().c_str());
      out.setEpoch(job_.epoch());
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
      out.setWait(!next && job_.ShouldWaitForPartition());
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
        RequestStopLocked("stopped by towerps ctl stop");
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
  LogPhaseChangeLocked();  // registrations, pause and resume move the phase
  return net::EncodeMessage(message);
}

void Scheduler::WriteJobFileLocked(const char* state) {
  if (options_.job_file.empty()) return;
  job_file_epoch_ = job_.epoch();
  absl::Status written =
      WriteJobFile(options_.job_file, {job_id_, endpoint(), state, job_.epoch()});
  if (!written.ok()) LOG(ERROR) << "scheduler: " << options_.job_file << ": " << written;
}

void Scheduler::FinishLocked(Phase phase, absl::Status status) {
  if (done_.HasBeenNotified()) return;
  job_.SetPhase(phase);
  end_ms_ = clock_->NowMicros() / 1000;
  WriteJobFileLocked(phase == Phase::kDone ? "done" : "failed");
  if (!status.ok()) LOG(ERROR) << "scheduler: the job failed: " << status.message();
  final_status_ = std::move(status);
  LogPhaseChangeLocked();
  LogJobEndLocked();
  done_.Notify();
}

void Scheduler::RequestStop(const std::string& why) {
  absl::MutexLock lock(&mu_);
  RequestStopLocked(why);
}

void Scheduler::RequestStopLocked(const std::string& why) {
  if (!stop_reason_.empty() || done_.HasBeenNotified()) return;
  stop_reason_ = why.empty() ? "stop requested" : why;
  LOG(INFO) << "scheduler: " << stop_reason_ << "; stopping the job";
}

std::string Scheduler::PhaseReasonLocked() const {
  if (job_.phase() == Phase::kFailed) return std::string(final_status_.message());
  if (job_.phase() == Phase::kStopping || job_.phase() == Phase::kDone) return stop_reason_;
  return "";
}

std::string Scheduler::StatusJson() {
  absl::MutexLock lock(&mu_);
  return StatusJsonLocked();
}

std::string Scheduler::StatusJsonLocked() {
  const int64_t now = clock_->NowMicros() / 1000;
  auto seconds_since = [now](int64_t ms) {
    return ms < 0 ? -1.0 : static_cast<double>(std::max<int64_t>(now - ms, 0)) / 1000.0;
  };
  auto nodes = [&](const std::vector<NodeInfo>& list, bool workers) {
    std::string out = "[";
    for (const NodeInfo& n : list) {
      JsonObject o;
      o.Add("rank", n.rank).Add("alive", n.alive);
      if (workers) {
        o.Add("steps", n.finished_steps)
            .Add("finished", n.finished)
            .Add("loss", progress_.WorkerLoss(n.rank))
            .Add("examples", progress_.WorkerExamples(n.rank));
      } else {
        o.Add("endpoint", n.endpoint);
      }
      o.Add("last_seen_s", seconds_since(n.rank < 0 ? -1 : n.last_heartbeat_ms));
      if (out.size() > 1) out += ",";
      out += o.ToString();
    }
    return out + "]";
  };
  int done = 0;
  for (const PartitionInfo& p : job_.partitions()) done += p.done ? 1 : 0;
  std::vector<bool> alive;
  for (const NodeInfo& w : job_.workers()) alive.push_back(w.alive);
  const JobRates rates = progress_.RatesAt(now);
  const double eta =
      job_.phase() == Phase::kDone
          ? 0.0
          : EtaSeconds(options_.planned_steps, job_.global_step(), rates.steps_per_s);
  JsonObject o;
  o.Add("phase", PhaseName(job_.phase()))
      .Add("global_step", job_.global_step())
      .Add("planned_steps", options_.planned_steps)
      .Add("epoch", static_cast<int64_t>(job_.epoch()))
      .Add("lr_scale", static_cast<double>(LrScaleLocked()))
      .Add("staleness", options_.job.staleness)
      .Add("elapsed_s", static_cast<double>((end_ms_ >= 0 ? end_ms_ : now) - start_ms_) / 1000.0)
      .Add("steps_per_s", rates.steps_per_s)
      .Add("examples_per_s", rates.examples_per_s)
      .Add("eta_s", eta)
      .Add("loss", progress_.MeanLoss(alive))
      .AddRaw("servers", nodes(job_.servers(), false))
      .AddRaw("workers", nodes(job_.workers(), true))
      .Add("partitions_done", done)
      .Add("partitions", static_cast<int64_t>(job_.partitions().size()))
      .Add("last_checkpoint", last_checkpoint_dir_)
      .Add("last_checkpoint_step", last_checkpoint_step_)
      .Add("last_checkpoint_age_s", seconds_since(last_checkpoint_ms_));
  return o.ToString();
}

absl::Status Scheduler::RunCheckpoint(int64_t step, CheckpointOutcome* outcome) {
  std::string dir = ps::CheckpointDir(options_.checkpoint_root, step);
  outcome->dir = dir;
  TOWERPS_RETURN_IF_ERROR(CreateDirectories(dir));
  if (ps_client_ == nullptr) {
    ps::PsClientOptions client;
    {
      absl::MutexLock lock(&mu_);
      for (const NodeInfo& n : job_.servers()) client.server_endpoints.push_back(n.endpoint);
    }
    client.rpc = options_.ps_rpc;
    client.server_public_keys = options_.server_public_keys;
    client.rpc.name = "scheduler";
    client.rpc.cancel = ps_cancel_.get();
    client.dense_params = options_.dense_params;
    TOWERPS_ASSIGN_OR_RETURN(ps::ShardMap map,
                             ps::ShardMap::FromWire(shard_owners_, options_.job.num_servers));
    TOWERPS_ASSIGN_OR_RETURN(ps_client_, ps::PsClient::Create(ctx_, client, std::move(map)));
  }
  // Incremental on the last checkpoint while its chain is shorter than
  // full_checkpoint_every links; otherwise (or with no checkpoint yet) full.
  int64_t base_step = -1;
  {
    std::string last;
    {
      absl::MutexLock lock(&mu_);
      last = last_checkpoint_dir_;
    }
    if (options_.full_checkpoint_every > 1 && !last.empty()) {
      auto chain = ps::ReadChain(last);
      if (!chain.ok()) {
        LOG(WARNING) << "scheduler: the last checkpoint " << last << " is unreadable ("
                     << chain.status() << "); taking a full one";
      } else if (static_cast<int64_t>(chain->size()) < options_.full_checkpoint_every &&
                 chain->back().manifest.step < step) {
        base_step = chain->back().manifest.step;
      }
    }
  }
  auto saved = ps_client_->Checkpoint(step, job_id_, /*restore=*/false, base_step);
  if (base_step >= 0 && absl::IsFailedPrecondition(saved.status())) {
    // A server whose last checkpoint is another (a replacement, a failed save).
    LOG(WARNING) << "scheduler: incremental checkpoint at step " << step << " on step "
                 << base_step << " refused (" << saved.status() << "); taking a full one";
    base_step = -1;
    saved = ps_client_->Checkpoint(step, job_id_, /*restore=*/false);
  }
  TOWERPS_ASSIGN_OR_RETURN(std::vector<ps::CheckpointFile> files, std::move(saved));
  outcome->incremental = base_step >= 0;
  for (const ps::CheckpointFile& file : files) outcome->bytes += static_cast<int64_t>(file.bytes);
  ps::CheckpointManifest manifest;
  manifest.job_id = job_id_;
  manifest.step = step;
  manifest.base_step = base_step;
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
  LOG(INFO) << "scheduler: " << (base_step >= 0 ? "incremental " : "") << "checkpoint at step "
            << step << " written to " << dir
            << (base_step >= 0 ? absl::StrCat(" (on step ", base_step, ")") : "");
  if (checkpoints_metric_) checkpoints_metric_->Increment();
  {
    absl::MutexLock lock(&mu_);
    last_checkpoint_dir_ = dir;
    last_checkpoint_step_ = step;
    last_checkpoint_ms_ = clock_->NowMicros() / 1000;
  }
  // Retention: a new full checkpoint is the only thing that can make an older chain
  // prunable (and an increment would make it re-verify the whole newest chain).
  if (base_step < 0 && options_.keep_full_checkpoints > 0) {
    auto pruned = ps::PruneCheckpoints(options_.checkpoint_root, options_.keep_full_checkpoints);
    if (!pruned.ok()) {
      LOG(WARNING) << "scheduler: deleting old checkpoints failed (the job goes on): "
                   << pruned.status();
    } else if (*pruned > 0) {
      LOG(INFO) << "scheduler: deleted " << *pruned << " old checkpoint(s), keeping the newest "
                << options_.keep_full_checkpoints << " full chain(s)";
    }
  }
  return absl::OkStatus();
}

Scheduler::Tick Scheduler::MonitorTickLocked(int64_t now) {
  Tick tick;
  for (const NodeInfo& dead : job_.DetectFailures(now)) {
    if (dead_nodes_metric_) dead_nodes_metric_->Increment();
    LogNodeDead(dead, "heartbeat timeout");
    LOG(ERROR) << "scheduler: " << RoleName(dead.role) << " " << dead.rank << " is dead";
    if (dead.role == Role::kServer) ServerLostLocked(dead.rank, now);
    if (done_.HasBeenNotified()) return tick;
  }
  if (job_.epoch() != job_file_epoch_) WriteJobFileLocked("running");
  if (job_.phase() == Phase::kRecovering) {
    RecoveryTickLocked(now, &tick);
    return tick;
  }
  // A partition nobody can take any more fails the job rather than let it end
  // "done" with data never trained.
  if (absl::Status stranded = job_.CheckStranded(now); !stranded.ok()) {
    FinishLocked(Phase::kFailed, stranded);
    return tick;
  }
  int live = 0;
  int64_t slowest = 0, fastest = 0;  // finished steps over live, unfinished workers
  for (const NodeInfo& w : job_.workers()) {
    if (!w.alive || w.finished) continue;
    slowest = live == 0 ? w.finished_steps : std::min(slowest, w.finished_steps);
    fastest = live == 0 ? w.finished_steps : std::max(fastest, w.finished_steps);
    ++live;
  }
  if (live_workers_metric_) live_workers_metric_->Set(live);
  if (clock_spread_metric_) clock_spread_metric_->Set(static_cast<double>(fastest - slowest));
  if (lr_scale_metric_) lr_scale_metric_->Set(LrScaleLocked());
  tick.step = job_.global_step();
  if (!stop_reason_.empty() && job_.phase() != Phase::kStopping) {
    if (job_.phase() == Phase::kRegistering) {
      FinishLocked(Phase::kDone, absl::OkStatus());  // nothing was trained
      return tick;
    }
    job_.BeginStop();
    stop_deadline_ms_ = now + options_.stop_timeout_ms;
    LOG(INFO) << "scheduler: waiting up to " << options_.stop_timeout_ms
              << " ms for the workers to report their progress";
  }
  const bool training = job_.phase() == Phase::kTraining || job_.phase() == Phase::kPaused;
  // A checkpoint waiting at its barrier is dropped when the job stops.
  if (!training && job_.checkpoint_running()) job_.CheckpointAbandoned();
  bool finish = training && job_.AllPartitionsDone() && job_.AllWorkersFinished();
  if (job_.phase() == Phase::kStopping) {
    finish = job_.AllWorkersFinished() || now >= stop_deadline_ms_;
    if (finish && !job_.AllWorkersFinished()) {
      LOG(WARNING) << "scheduler: not every worker reported its progress within "
                   << options_.stop_timeout_ms << " ms; checkpointing anyway";
    }
  }
  if (finish) {
    tick.final_checkpoint = !options_.checkpoint_root.empty();
    if (!tick.final_checkpoint) FinishLocked(Phase::kDone, absl::OkStatus());
  } else if (training && !options_.checkpoint_root.empty()) {
    if (!job_.checkpoint_running() && (job_.CheckpointDue(now) || checkpoint_requested_)) {
      checkpoint_requested_ = false;
      job_.CheckpointStarted();  // a synchronous job first aligns its workers
    }
    // The monitor runs a checkpoint inline: one still "running" here waits at its
    // barrier.
    tick.checkpoint = job_.checkpoint_running() && job_.CheckpointBarrierReached();
  }
  return tick;
}

void Scheduler::MonitorLoop() {
  pthread_setname_np(pthread_self(), "sched-monitor");
  while (!stop_.WaitForNotificationWithTimeout(absl::Milliseconds(options_.monitor_interval_ms))) {
    const int64_t now = clock_->NowMicros() / 1000;
    Tick tick;
    {
      absl::MutexLock lock(&mu_);
      if (done_.HasBeenNotified()) continue;
      tick = MonitorTickLocked(now);
      LogPhaseChangeLocked();
    }
    if (tick.recover) RunRecovery(tick);
    if (tick.checkpoint || tick.final_checkpoint) {
      CheckpointOutcome outcome;
      const int64_t started_us = clock_->NowMicros();
      absl::Status status = RunCheckpoint(tick.step, &outcome);
      LogCheckpoint(tick.step, outcome, status,
                    static_cast<double>(clock_->NowMicros() - started_us) / 1000);
      absl::MutexLock lock(&mu_);
      if (!status.ok()) {
        LOG(ERROR) << "scheduler: checkpoint at step " << tick.step << ": " << status;
      }
      if (tick.checkpoint) job_.CheckpointFinished(tick.step, now);
      if (tick.final_checkpoint) {
        FinishLocked(status.ok() ? Phase::kDone : Phase::kFailed, status);
      }
    }
  }
}

}  // namespace towerps::scheduler
