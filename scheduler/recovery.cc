// Recovery: replacing a dead parameter server (phase recovering), rolling a
// synchronous job back to its checkpoint, and adopting a job after a scheduler
// restart. The contract with the nodes is in docs/distributed.md ("Recovery").
#include "scheduler/recovery.h"

#include <capnp/message.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/status.h"
#include "glog/logging.h"
#include "net/codec.h"
#include "scheduler/scheduler.h"

namespace towerps::scheduler {

using net::wire::Envelope;

absl::StatusOr<RecoveryPoint> NewestRecoveryPoint(const std::string& root, uint64_t job_id) {
  RecoveryPoint point;
  if (root.empty()) return point;
  absl::StatusOr<std::string> latest = ps::LatestCheckpoint(root);
  if (absl::IsNotFound(latest.status())) return point;
  TOWERPS_RETURN_IF_ERROR(latest.status());
  TOWERPS_ASSIGN_OR_RETURN(ps::CheckpointManifest manifest, ps::ReadManifest(*latest));
  if (manifest.job_id != job_id) {
    LOG(WARNING) << "scheduler: " << *latest << " is of another job; not restored";
    return point;
  }
  point.dir = *latest;
  point.step = manifest.step;
  point.partitions = std::move(manifest.partitions);
  return point;
}

absl::Status OrderRestore(const net::ZmqContext* ctx, net::RpcClientOptions rpc, int64_t step,
                          uint64_t job_id, int64_t deadline_ms, const Clock* clock,
                          const absl::Notification* stop) {
  rpc.max_attempts = 1;  // the loop below repeats orders refused as Unavailable
  TOWERPS_ASSIGN_OR_RETURN(auto client, net::RpcClient::Connect(ctx, rpc));
  while (true) {
    capnp::MallocMessageBuilder message;
    auto envelope = message.initRoot<Envelope>();
    const uint64_t id = client->NextRequestId();
    net::InitEnvelope(envelope, rpc.name, id);
    auto checkpoint = envelope.getBody().initCheckpoint();
    checkpoint.setStep(step);
    checkpoint.setJobId(job_id);
    checkpoint.setRestore(true);
    absl::StatusOr<net::Message> reply = client->Call(id, net::EncodeMessage(message), false);
    if (!absl::IsUnavailable(reply.status())) return reply.status();
    if (rpc.cancel != nullptr && rpc.cancel->cancelled()) return rpc.cancel->reason();
    if (clock->NowMicros() / 1000 >= deadline_ms) {
      return Annotate(reply.status(), absl::StrCat("restore order to ", rpc.endpoint));
    }
    if (stop != nullptr && stop->WaitForNotificationWithTimeout(absl::Milliseconds(100))) {
      return absl::CancelledError("the scheduler is stopping");
    }
  }
}

absl::Status Scheduler::AdoptJob(const JobFile& file) {
  job_id_ = file.job_id;
  TOWERPS_ASSIGN_OR_RETURN(RecoveryPoint point,
                           NewestRecoveryPoint(options_.checkpoint_root, job_id_));
  absl::MutexLock lock(&mu_);
  job_.set_epoch(file.epoch);
  TOWERPS_RETURN_IF_ERROR(Annotate(job_.AdoptJob(point.step, point.partitions),
                                   absl::StrCat("adopt the job of ", options_.job_file)));
  restore_step_ = point.dir.empty() ? -1 : point.step;
  LOG(WARNING) << "scheduler: recovering the running job of " << options_.job_file << " at "
               << file.endpoint << " from " << (point.dir.empty() ? "no checkpoint" : point.dir)
               << "; waiting for its nodes to register again";
  return absl::OkStatus();
}

absl::Status Scheduler::HandleRegister(net::wire::Register::Reader r, int64_t now,
                                       Envelope::Builder reply) {
  TOWERPS_ASSIGN_OR_RETURN(Role role, RoleFromWire(r.getRole()));
  Registration info;
  info.job_id = r.getJobId();
  info.finished_steps = r.getFinishedSteps();
  info.global_step = r.getGlobalStep();
  if (r.getPartitions().size() > job_.partitions().size()) {
    return absl::InvalidArgumentError("a registration lists more partitions than the job has");
  }
  for (auto p : r.getPartitions()) {
    info.partitions.push_back({p.getId(), p.getOffset(), p.getDone()});
  }
  const bool adopting = job_.adopting();
  const bool registering = job_.phase() == Phase::kRegistering;  // (this may end it)
  TOWERPS_ASSIGN_OR_RETURN(Registered registered,
                           job_.Register(role, r.getRank(), r.getEndpoint().cStr(), now, info));
  LogNodeRegistered(role, registered, r.getEndpoint().cStr());
  if (role == Role::kServer && registered.replaced) ServerLostLocked(registered.rank, now);
  if (role == Role::kWorker && !registered.survivor) progress_.WorkerRestarted(registered.rank);
  if (adopting && role == Role::kServer && !registered.survivor) {
    adopted_new_servers_.push_back(registered.rank);
  }
  if (adopting && !job_.adopting()) {
    // Every node is back: new servers are restored like replacements (a synchronous
    // job rolls back), before any worker sees the job training.
    for (int rank : adopted_new_servers_) ServerLostLocked(rank, now);
    adopted_new_servers_.clear();
  }
  auto out = reply.getBody().initRegisterReply();
  out.setRank(registered.rank);
  FillCluster(out, role, registered.rank);
  out.setFinishedSteps(registered.finished_steps);
  // A new server of a resumed job loads its checkpoint at its start. A surviving
  // server keeps its state; a new one is restored by order (RunRecovery) when a job
  // is adopted or training.
  if (role == Role::kServer) {
    out.setRestoreStep(registering && !adopting && !registered.survivor ? restore_step_ : -1);
  }
  return absl::OkStatus();
}

std::string Scheduler::ResumeHintLocked() const {
  return absl::StrCat("continue the job from its last checkpoint (",
                      last_checkpoint_dir_.empty() ? "none yet" : last_checkpoint_dir_,
                      ") with --resume");
}

void Scheduler::ServerLostLocked(int rank, int64_t now) {
  const Phase phase = job_.phase();
  if (phase == Phase::kRegistering) return;  // nothing trained: the rank is re-taken
  if (phase != Phase::kTraining && phase != Phase::kPaused && phase != Phase::kRecovering) {
    // Stopping: the final checkpoint cannot be complete without it.
    FinishLocked(Phase::kFailed, absl::UnavailableError(absl::StrCat(
                                     "parameter server ", rank, " is dead; ", ResumeHintLocked())));
    return;
  }
  LOG(ERROR) << "scheduler: ps/" << rank << " is dead; waiting up to "
             << options_.recovery_timeout_ms << " ms for its replacement";
  if (recovery_started_ms_ < 0) recovery_started_ms_ = now;
  if (std::find(replaced_servers_.begin(), replaced_servers_.end(), rank) ==
      replaced_servers_.end()) {
    replaced_servers_.push_back(rank);
  }
  // A checkpoint waiting at its barrier is dropped; one waiting on the dead server
  // fails at once.
  job_.CheckpointAbandoned();
  ps_cancel_->Cancel(absl::UnavailableError(absl::StrCat("ps/", rank, " is dead")));
  job_.SetPhase(Phase::kRecovering);
}

void Scheduler::RecoveryTickLocked(int64_t now, Tick* tick) {
  if (now - recovery_started_ms_ > options_.recovery_timeout_ms) {
    const bool one = replaced_servers_.size() == 1;
    LogRecoveryLocked(replaced_servers_, 0, static_cast<double>(now - recovery_started_ms_) / 1000,
                      false);
    FinishLocked(
        Phase::kFailed,
        absl::UnavailableError(absl::StrCat(
            one ? "parameter server " : "parameter servers ",
            absl::StrJoin(replaced_servers_, ", "), one ? " is dead and was" : " are dead and were",
            " not replaced within ", options_.recovery_timeout_ms, " ms; ", ResumeHintLocked())));
    return;
  }
  for (const NodeInfo& server : job_.servers()) {
    if (!server.alive) return;  // still waiting for a replacement
  }
  tick->recover = true;
  tick->replaced = replaced_servers_;
  if (options_.job.staleness == 0) {
    for (size_t s = 0; s < job_.servers().size(); ++s) tick->restore.push_back(static_cast<int>(s));
  } else {
    tick->restore = replaced_servers_;
  }
  for (const NodeInfo& server : job_.servers()) tick->endpoints.push_back(server.endpoint);
}

void Scheduler::RunRecovery(const Tick& tick) {
  absl::StatusOr<RecoveryPoint> point;
  int64_t deadline = 0;
  // The orders wait on this: a server lost meanwhile (e.g. a replacement killed
  // while it restores, whose own replacement registers) ends them at once
  // (ServerLostLocked cancels it) and the recovery starts over; an order still
  // unanswered after recovery_timeout_ms fails the job.
  ps_client_.reset();  // built again with the new endpoints at the next checkpoint
  const Cancellation* cancel = nullptr;
  {
    absl::MutexLock lock(&mu_);
    deadline = recovery_started_ms_ + options_.recovery_timeout_ms;
    ps_cancel_ = std::make_unique<Cancellation>();
    cancel = ps_cancel_.get();
  }
  point = NewestRecoveryPoint(options_.checkpoint_root, job_id_);
  absl::Status status = point.status();
  // No checkpoint: a replaced server starts empty (rows are created again, worker 0
  // assigns the dense block again); a synchronous job's other servers keep theirs.
  for (size_t i = 0; status.ok() && !point->dir.empty() && i < tick.restore.size(); ++i) {
    const int rank = tick.restore[i];
    net::RpcClientOptions rpc = options_.ps_rpc;
    rpc.endpoint = tick.endpoints[rank];
    rpc.name = "scheduler";
    rpc.timeout_ms = std::min(rpc.timeout_ms, options_.recovery_timeout_ms);
    rpc.cancel = cancel;
    if (rpc.curve.enabled()) rpc.curve.server_public_key = options_.server_public_keys[rank];
    status = Annotate(OrderRestore(ctx_, rpc, point->step, job_id_, deadline, clock_, &stop_),
                      absl::StrCat("restore ps/", rank, " from ", point->dir));
  }
  const int64_t now = clock_->NowMicros() / 1000;
  absl::MutexLock lock(&mu_);
  if (done_.HasBeenNotified() || job_.phase() != Phase::kRecovering) return;
  if (cancel->cancelled()) {
    // Another server was lost meanwhile: every restore of this pass is ordered
    // again once it is replaced.
    LOG(WARNING) << "scheduler: recovery interrupted: " << cancel->reason();
    return;
  }
  const double seconds = static_cast<double>(now - recovery_started_ms_) / 1000;
  if (!status.ok()) {
    LogRecoveryLocked(tick.replaced, 0, seconds, false);
    FinishLocked(Phase::kFailed, status);
    return;
  }
  for (int rank : tick.replaced) {
    replaced_servers_.erase(std::remove(replaced_servers_.begin(), replaced_servers_.end(), rank),
                            replaced_servers_.end());
  }
  for (const NodeInfo& server : job_.servers()) {
    if (!server.alive) return;  // another one died meanwhile: keep recovering
  }
  if (!replaced_servers_.empty()) return;
  const int64_t step = point->dir.empty() ? 0 : point->step;
  const int64_t lost = std::max<int64_t>(job_.global_step() - step, 0);
  if (lost_steps_metric_) lost_steps_metric_->Increment(lost);
  if (options_.job.staleness == 0) {
    absl::Status rolled = job_.RollbackTo(step, point->partitions);
    if (!rolled.ok()) {
      LogRecoveryLocked(tick.replaced, lost, seconds, false);
      FinishLocked(Phase::kFailed, rolled);
      return;
    }
  } else {
    LOG(WARNING) << "scheduler: ps/" << absl::StrJoin(tick.replaced, ", ps/") << " restored "
                 << (point->dir.empty() ? "empty" : "from " + point->dir) << "; " << lost
                 << " steps of updates to its shards are lost";
    job_.BumpEpoch();
  }
  LOG(WARNING) << "scheduler: recovered in " << seconds << " s; training again (epoch "
               << job_.epoch() << ")";
  if (recoveries_metric_) recoveries_metric_->Increment();
  if (recovery_seconds_metric_) recovery_seconds_metric_->Record(seconds);
  recovery_started_ms_ = -1;
  LogRecoveryLocked(tick.replaced, lost, seconds, true);
  job_.SetPhase(Phase::kTraining);
  LogPhaseChangeLocked();
  WriteJobFileLocked("running");
}

}  // namespace towerps::scheduler
