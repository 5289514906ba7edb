// The scheduler's events (<run_dir>/events.jsonl): one builder per event, with the
// keys docs/metrics.md ("events.jsonl") lists. Appends never fail the job: EventLog
// logs and counts a failed write.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "scheduler/scheduler.h"

namespace towerps::scheduler {

void Scheduler::LogEvent(absl::string_view event, const JsonObject& fields) {
  if (events_ == nullptr) return;
  (void)events_->Append(event, fields);  // logged and counted by the EventLog
}

void Scheduler::LogJobStartLocked(bool recovered) {
  JsonObject o;
  o.Add("job_id", absl::StrFormat("%016x", job_id_))
      .Add("config", options_.config_path)
      .Add("dataset", options_.dataset_path)
      .Add("servers", options_.job.num_servers)
      .Add("workers", options_.job.num_workers)
      .Add("planned_steps", options_.planned_steps)
      .Add("staleness", options_.job.staleness)
      .Add("partitions", options_.job.num_partitions)
      .Add("recovered", recovered)
      .Add("start_step", job_.global_step());
  LogEvent("job_start", o);
  LogPhaseChangeLocked();
}

void Scheduler::LogPhaseChangeLocked() {
  const Phase phase = job_.phase();
  if (logged_phase_ == phase) return;
  logged_phase_ = phase;
  std::string reason = PhaseReasonLocked();
  if (phase == Phase::kRecovering && !replaced_servers_.empty()) {
    reason = absl::StrCat("replacing ps/", absl::StrJoin(replaced_servers_, ", ps/"));
  }
  JsonObject o;
  o.Add("phase", PhaseName(phase)).Add("reason", reason);
  LogEvent("phase", o);
}

void Scheduler::LogNodeDead(const NodeInfo& node, const char* reason) {
  JsonObject o;
  o.Add("role", RoleName(node.role)).Add("rank", node.rank).Add("reason", reason);
  LogEvent("node_dead", o);
}

void Scheduler::LogNodeRegistered(Role role, const Registered& registered,
                                  const std::string& endpoint) {
  if (registered.replaced) {
    NodeInfo holder;
    holder.role = role;
    holder.rank = registered.rank;
    LogNodeDead(holder, "replaced by a new process");
  }
  JsonObject o;
  o.Add("role", RoleName(role))
      .Add("rank", registered.rank)
      .Add("endpoint", role == Role::kServer ? endpoint : std::string())
      .Add("replaced", registered.replaced);
  LogEvent("node_registered", o);
}

void Scheduler::LogCheckpoint(int64_t step, const CheckpointOutcome& outcome,
                              const absl::Status& status, double duration_ms) {
  JsonObject o;
  o.Add("step", step)
      .Add("dir", outcome.dir)
      .Add("bytes", outcome.bytes)
      .Add("duration_ms", duration_ms)
      .Add("incremental", outcome.incremental)
      .Add("ok", status.ok())
      .Add("error", status.ok() ? std::string() : status.ToString());
  LogEvent("checkpoint", o);
}

void Scheduler::LogRecoveryLocked(const std::vector<int>& ranks, int64_t lost_steps, double seconds,
                                  bool ok) {
  // A synchronous job restores every server and rolls the whole job back.
  std::vector<int> logged = ranks;
  if (options_.job.staleness == 0 || logged.empty()) logged = {-1};
  for (int rank : logged) {
    JsonObject o;
    o.Add("rank", rank).Add("lost_steps", lost_steps).Add("seconds", seconds).Add("ok", ok);
    LogEvent("recovery", o);
  }
}

void Scheduler::LogJobEndLocked() {
  JsonObject o;
  o.Add("phase", PhaseName(job_.phase()))
      .Add("reason", PhaseReasonLocked())
      .Add("global_step", job_.global_step())
      .Add("duration_ms", static_cast<double>(clock_->NowMicros() - start_us_) / 1000);
  LogEvent("job_end", o);
}

}  // namespace towerps::scheduler
