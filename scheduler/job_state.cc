#include "scheduler/job_state.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "glog/logging.h"
#include "net/membership_client.h"

namespace towerps::scheduler {

const char* RoleName(Role role) { return role == Role::kServer ? "ps" : "worker"; }

absl::StatusOr<Role> RoleFromWire(uint8_t role) {
  if (role > 1) return absl::InvalidArgumentError(absl::StrCat("unknown role ", role));
  return static_cast<Role>(role);
}

const char* PhaseName(Phase phase) { return net::PhaseName(static_cast<uint8_t>(phase)); }

absl::Status JobStateOptions::Validate() const {
  if (num_servers <= 0) return absl::InvalidArgumentError("num_servers must be > 0");
  if (num_workers <= 0) return absl::InvalidArgumentError("num_workers must be > 0");
  if (num_partitions < num_workers) {
    return absl::InvalidArgumentError(absl::StrCat("num_partitions (", num_partitions,
                                                   ") must be >= num_workers (", num_workers, ")"));
  }
  if (heartbeat_timeout_ms <= 0) {
    return absl::InvalidArgumentError("heartbeat_timeout_ms must be > 0");
  }
  if (checkpoint_every_steps < 0 || checkpoint_every_ms < 0) {
    return absl::InvalidArgumentError("checkpoint intervals must be >= 0");
  }
  if (checkpoint_clock_multiple < 1) {
    return absl::InvalidArgumentError("checkpoint_clock_multiple must be >= 1");
  }
  return absl::OkStatus();
}

JobState::JobState(const JobStateOptions& options) : options_(options) {
  servers_.resize(options.num_servers);
  workers_.resize(options.num_workers);
  for (NodeInfo& node : servers_) node.role = Role::kServer;
  for (NodeInfo& node : workers_) node.role = Role::kWorker;
  partitions_.resize(options.num_partitions);
  for (int p = 0; p < options.num_partitions; ++p) {
    partitions_[p].id = p;
    partitions_[p].owner = p % options.num_workers;  // round-robin initial assignment
  }
}

std::vector<NodeInfo>* JobState::NodesOf(Role role) {
  return role == Role::kServer ? &servers_ : &workers_;
}

const NodeInfo* JobState::FindNode(Role role, int rank) const {
  const auto& nodes = role == Role::kServer ? servers_ : workers_;
  if (rank < 0 || rank >= static_cast<int>(nodes.size()) || nodes[rank].rank < 0) return nullptr;
  return &nodes[rank];
}

absl::StatusOr<Registered> JobState::Register(Role role, int rank, const std::string& endpoint,
                                              int64_t now_ms, const Registration& info) {
  std::vector<NodeInfo>& nodes = *NodesOf(role);
  const int size = static_cast<int>(nodes.size());
  if (rank >= size || rank < -1) {
    return absl::InvalidArgumentError(
        absl::StrCat(RoleName(role), " rank ", rank, " is out of range [0, ", size, ")"));
  }
  // Everything the process reports is checked before anything changes.
  if (info.finished_steps < 0 || info.finished_steps > kMaxReportedCount ||
      info.global_step < -1 || info.global_step > kMaxReportedCount) {
    return absl::InvalidArgumentError(
        absl::StrCat("registration reports ", info.finished_steps, " finished steps at global step ",
                     info.global_step, " (each must be in [0, 2^48])"));
  }
  TOWERPS_RETURN_IF_ERROR(CheckPartitionReports(role, rank, info.partitions));
  const bool of_this_job = info.job_id != 0 && info.job_id == job_id_;
  if (info.job_id != 0 && !of_this_job) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s %d belongs to job %016x; this scheduler runs job %016x; restart it as a new process",
        RoleName(role), rank, info.job_id, job_id_));
  }
  if (rank == -1) {
    for (int r = 0; r < size && rank == -1; ++r) {
      if (nodes[r].rank < 0) rank = r;
    }
    for (int r = 0; r < size && rank == -1; ++r) {
      if (!nodes[r].alive) rank = r;  // take over a dead node's rank
    }
    if (rank == -1) {
      return absl::ResourceExhaustedError(
          absl::StrCat("all ", size, " ", RoleName(role), " ranks are taken"));
    }
  }
  NodeInfo& node = nodes[rank];
  Registered out;
  out.rank = rank;
  if (node.alive && of_this_job && node.endpoint == endpoint) {
    node.last_heartbeat_ms = now_ms;  // the same process retrying its registration
    out.survivor = true;
    out.finished_steps = node.finished_steps;
    return out;
  }
  if (of_this_job && node.rank >= 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(RoleName(role), " ", rank,
                     node.alive ? " is held by another process" : " was declared dead",
                     "; restart it as a new process"));
  }
  if (node.alive) {
    // Only a restarted process registers for a rank it holds (with CURVE, only the
    // holder of the rank's key can): the old holder is gone.
    node.alive = false;
    out.replaced = true;
    LOG(ERROR) << "scheduler: " << RoleName(role) << " " << rank
               << " registered again as a new process; the old one is declared dead";
    if (role == Role::kWorker) ReleasePartitions(rank, "replaced");
  }
  if (of_this_job) {
    if (role == Role::kWorker) {
      MergePartitions(rank, info.partitions);
      node.finished_steps = info.finished_steps;
    }
    adopted_global_step_ = std::max(adopted_global_step_, info.global_step);
    out.survivor = true;
  } else if (role == Role::kWorker && adopting_ && node.rank < 0) {
    // A new worker while the job is adopted: its rank's clock is unknown; the
    // slowest survivor's keeps bounded staleness satisfiable.
    int64_t slowest = -1;
    for (const NodeInfo& w : workers_) {
      if (w.rank >= 0 && w.alive) {
        slowest = slowest < 0 ? w.finished_steps : std::min(slowest, w.finished_steps);
      }
    }
    node.finished_steps = std::max<int64_t>(slowest, 0);
  }
  const bool restart = node.rank >= 0;
  node.role = role;
  node.rank = rank;
  node.endpoint = endpoint;
  node.alive = true;
  node.finished = false;
  node.last_heartbeat_ms = now_ms;
  node.seen_epoch = epoch_;
  out.finished_steps = node.finished_steps;
  LOG(INFO) << "scheduler: " << RoleName(role) << " " << rank
            << (out.survivor ? " of this job re-registered"
                             : (restart ? " re-registered as a new process" : " registered"))
            << (endpoint.empty() ? "" : " at " + endpoint);
  MaybeStartTraining(now_ms);
  return out;
}

void JobState::MaybeStartTraining(int64_t now_ms) {
  if (phase_ != Phase::kRegistering) return;
  for (const auto* nodes : {&servers_, &workers_}) {
    for (const NodeInfo& n : *nodes) {
      if (!n.alive) return;
    }
  }
  phase_ = Phase::kTraining;
  last_checkpoint_ms_ = now_ms;
  if (adopting_) {
    adopting_ = false;
    int64_t sum = 0;
    for (const NodeInfo& w : workers_) sum += w.finished_steps;
    const int64_t recovered = std::max(adopted_global_step_, sum);
    base_step_ = recovered - sum;
    ++epoch_;  // workers re-read the cluster
    LOG(INFO) << "scheduler: every node is back; the job continues at global step " << recovered;
  }
  LOG(INFO) << "scheduler: all " << servers_.size() << " servers and " << workers_.size()
            << " workers registered; training";
}

absl::Status JobState::Heartbeat(Role role, int rank, int64_t now_ms) {
  std::vector<NodeInfo>& nodes = *NodesOf(role);
  if (rank < 0 || rank >= static_cast<int>(nodes.size()) || nodes[rank].rank < 0) {
    return absl::NotFoundError(absl::StrCat(RoleName(role), " ", rank, " is not registered"));
  }
  if (!nodes[rank].alive) {
    return absl::FailedPreconditionError(absl::StrCat(
        RoleName(role), " ", rank, " was declared dead or replaced; restart it as a new process"));
  }
  nodes[rank].last_heartbeat_ms = now_ms;
  return absl::OkStatus();
}

std::vector<NodeInfo> JobState::DetectFailures(int64_t now_ms) {
  std::vector<NodeInfo> dead;
  for (auto* nodes : {&servers_, &workers_}) {
    for (NodeInfo& node : *nodes) {
      if (!node.alive || node.finished ||
          now_ms - node.last_heartbeat_ms <= options_.heartbeat_timeout_ms) {
        continue;
      }
      node.alive = false;
      dead.push_back(node);
      LOG(WARNING) << "scheduler: " << RoleName(node.role) << " " << node.rank
                   << " missed heartbeats for " << now_ms - node.last_heartbeat_ms
                   << " ms; declared dead";
      if (node.role == Role::kWorker) ReleasePartitions(node.rank, "dead");
    }
  }
  return dead;
}

void JobState::ReleasePartitions(int rank, const char* why) {
  for (PartitionInfo& p : partitions_) {
    if (p.owner == rank && !p.done) {
      p.owner = -1;  // handed over to the next worker that asks
      LOG(INFO) << "scheduler: partition " << p.id << " of " << why << " worker " << rank
                << " released at offset " << p.resume_offset;
    }
  }
}

absl::Status JobState::ReportClock(int rank, int64_t finished_steps, int64_t now_ms, int partition,
                                   int64_t offset) {
  if (FindNode(Role::kWorker, rank) == nullptr) {
    return absl::NotFoundError(absl::StrCat("worker ", rank, " is not registered"));
  }
  NodeInfo& node = workers_[rank];
  if (node.alive) node.last_heartbeat_ms = now_ms;
  if (Stale(node)) return absl::OkStatus();  // progress from before the rollback
  if (finished_steps > kMaxReportedCount || offset < 0 || offset > kMaxReportedCount) {
    return absl::InvalidArgumentError(absl::StrCat("worker ", rank, " reports ", finished_steps,
                                                   " steps at offset ", offset));
  }
  if (finished_steps < node.finished_steps) {
    return absl::InvalidArgumentError(absl::StrCat("worker ", rank, " clock went back from ",
                                                   node.finished_steps, " to ", finished_steps));
  }
  node.finished_steps = finished_steps;
  if (partition >= 0 && partition < static_cast<int>(partitions_.size()) &&
      partitions_[partition].owner == rank && offset >= 0) {
    PartitionInfo& p = partitions_[partition];
    p.resume_offset = std::max(p.resume_offset, offset);
  }
  return absl::OkStatus();
}

std::vector<bool> JobState::PacingWorkers() const {
  std::vector<bool> holds(workers_.size(), false);  // an unfinished partition
  for (const PartitionInfo& p : partitions_) {
    if (p.owner >= 0 && p.owner < static_cast<int>(holds.size()) && !p.done) {
      holds[p.owner] = true;
    }
  }
  for (size_t w = 0; w < workers_.size(); ++w) {
    holds[w] = holds[w] && workers_[w].alive && !workers_[w].finished;
  }
  return holds;
}

int64_t JobState::FastestLiveWorkerSteps() const {
  const std::vector<bool> pacing = PacingWorkers();
  int64_t fastest = -1;
  for (size_t w = 0; w < workers_.size(); ++w) {
    if (pacing[w]) fastest = std::max(fastest, workers_[w].finished_steps);
  }
  return fastest;
}

int64_t JobState::BarrierSteps() const {
  const int64_t fastest = FastestLiveWorkerSteps();
  const int64_t k = options_.checkpoint_clock_multiple;
  return fastest <= 0 ? fastest : (fastest + k - 1) / k * k;
}

int64_t JobState::SlowestLiveWorkerSteps() const {
  const std::vector<bool> pacing = PacingWorkers();
  int64_t slowest = std::numeric_limits<int64_t>::max();
  for (size_t w = 0; w < workers_.size(); ++w) {
    if (pacing[w]) slowest = std::min(slowest, workers_[w].finished_steps);
  }
  return slowest;
}

bool JobState::MayStartStep(int rank, int64_t step) const {
  if (phase_ != Phase::kTraining) return false;
  const NodeInfo* self = FindNode(Role::kWorker, rank);
  if (self != nullptr && Stale(*self)) return false;
  if (barrier_ && step >= BarrierSteps()) return false;
  if (options_.staleness < 0) return true;
  if (self == nullptr) return false;
  return step - SlowestLiveWorkerSteps() <= options_.staleness;
}

absl::Status JobState::MarkWorkerFinished(int rank) {
  if (FindNode(Role::kWorker, rank) == nullptr) {
    return absl::NotFoundError(absl::StrCat("worker ", rank, " is not registered"));
  }
  if (!workers_[rank].finished) {
    workers_[rank].finished = true;
    ReleasePartitions(rank, "departed");
  }
  return absl::OkStatus();
}

bool JobState::AllWorkersFinished() const {
  return std::all_of(workers_.begin(), workers_.end(),
                     [](const NodeInfo& n) { return n.finished || (n.rank >= 0 && !n.alive); });
}

int64_t JobState::global_step() const {
  int64_t total = base_step_;
  for (const NodeInfo& node : workers_) total += node.finished_steps;
  return total;
}

absl::Status JobState::RestoreProgress(int64_t step,
                                       absl::Span<const ps::PartitionProgress> partitions) {
  if (phase_ != Phase::kRegistering) {
    return absl::FailedPreconditionError("progress is restored before training starts");
  }
  if (partitions.size() != partitions_.size()) {
    return absl::InvalidArgumentError(absl::StrCat("the checkpoint has ", partitions.size(),
                                                   " data partitions; this job has ",
                                                   partitions_.size()));
  }
  if (step < 0) return absl::InvalidArgumentError("negative checkpoint step");
  for (size_t p = 0; p < partitions.size(); ++p) {
    partitions_[p].resume_offset = partitions[p].offset;
    partitions_[p].done = partitions[p].done;
  }
  base_step_ = step;
  last_checkpoint_step_ = step;
  return absl::OkStatus();
}

std::optional<PartitionInfo> JobState::NextPartition(int rank) {
  const NodeInfo* node = FindNode(Role::kWorker, rank);
  if (!Running() || node == nullptr || Stale(*node)) return std::nullopt;
  for (PartitionInfo& p : partitions_) {
    if (p.owner == rank && !p.done) return p;
  }
  for (PartitionInfo& p : partitions_) {
    if (p.owner == -1 && !p.done) {
      p.owner = rank;
      LOG(INFO) << "scheduler: partition " << p.id << " handed to worker " << rank << " at offset "
                << p.resume_offset;
      return p;
    }
  }
  return std::nullopt;
}

absl::Status JobState::ReportPartition(int rank, int partition, int64_t offset, bool done) {
  const NodeInfo* node = FindNode(Role::kWorker, rank);
  if (node == nullptr) {  // e.g. a restarted scheduler the worker has not rejoined yet
    return absl::NotFoundError(absl::StrCat("worker ", rank, " is not registered"));
  }
  if (Stale(*node)) return absl::OkStatus();  // from before a rollback
  if (partition < 0 || partition >= static_cast<int>(partitions_.size())) {
    return absl::InvalidArgumentError(absl::StrCat("no partition ", partition));
  }
  PartitionInfo& p = partitions_[partition];
  if (p.owner != rank) {
    return absl::FailedPreconditionError(
        absl::StrCat("partition ", partition, " is not owned by worker ", rank));
  }
  p.resume_offset = std::max(p.resume_offset, offset);
  p.done = p.done || done;
  return absl::OkStatus();
}

bool JobState::AllPartitionsDone() const {
  return std::all_of(partitions_.begin(), partitions_.end(),
                     [](const PartitionInfo& p) { return p.done; });
}

bool JobState::Running() const {
  return phase_ == Phase::kRegistering || phase_ == Phase::kTraining || phase_ == Phase::kPaused ||
         phase_ == Phase::kRecovering;
}

bool JobState::ShouldWaitForPartition() const { return Running() && !AllPartitionsDone(); }

absl::Status JobState::CheckStranded(int64_t now_ms) {
  const bool taker = std::any_of(workers_.begin(), workers_.end(),
                                 [](const NodeInfo& n) { return n.alive && !n.finished; });
  if (taker || AllPartitionsDone() || (phase_ != Phase::kTraining && phase_ != Phase::kPaused)) {
    stranded_since_ms_ = -1;
    return absl::OkStatus();
  }
  if (stranded_since_ms_ < 0) {
    stranded_since_ms_ = now_ms;
    LOG(WARNING) << "scheduler: no live worker is left to take the unfinished partitions; "
                    "the job fails unless a worker registers within "
                 << options_.heartbeat_timeout_ms << " ms";
  }
  if (now_ms - stranded_since_ms_ <= options_.heartbeat_timeout_ms) return absl::OkStatus();
  std::vector<std::string> unfinished, dead, departed;
  for (const PartitionInfo& p : partitions_) {
    if (!p.done) unfinished.push_back(absl::StrCat(p.id, " (at example ", p.resume_offset, ")"));
  }
  for (const NodeInfo& n : workers_) {
    if (n.rank < 0) continue;
    if (!n.alive) dead.push_back(absl::StrCat(n.rank));
    if (n.alive && n.finished) departed.push_back(absl::StrCat(n.rank));
  }
  return absl::FailedPreconditionError(
      absl::StrCat("partitions ", absl::StrJoin(unfinished, ", "),
                   " are unfinished and no live worker is left to take them (dead workers: ",
                   dead.empty() ? "none" : absl::StrJoin(dead, ", "),
                   "; stopped workers: ", departed.empty() ? "none" : absl::StrJoin(departed, ", "),
                   "); continue the job from its last checkpoint with --resume"));
}

bool JobState::CheckpointDue(int64_t now_ms) const {
  if (checkpoint_running_ || phase_ != Phase::kTraining) return false;
  if (options_.checkpoint_every_steps > 0 &&
      global_step() - last_checkpoint_step_ >= options_.checkpoint_every_steps) {
    return true;
  }
  return options_.checkpoint_every_ms > 0 && last_checkpoint_ms_ >= 0 &&
         now_ms - last_checkpoint_ms_ >= options_.checkpoint_every_ms;
}

void JobState::CheckpointStarted() {
  checkpoint_running_ = true;
  barrier_ = options_.staleness == 0;
  for (NodeInfo& w : workers_) w.at_barrier = false;  // a worker may be inside a step
}

bool JobState::RequestStep(int rank, int64_t step) {
  const bool may = MayStartStep(rank, step);
  if (barrier_ && !may && FindNode(Role::kWorker, rank) != nullptr &&
      step == workers_[rank].finished_steps) {
    workers_[rank].at_barrier = true;
  }
  return may;
}

bool JobState::CheckpointBarrierReached() const {
  if (!barrier_) return true;
  const std::vector<bool> pacing = PacingWorkers();
  for (size_t w = 0; w < workers_.size(); ++w) {
    if (!pacing[w]) continue;
    if (Stale(workers_[w]) || !workers_[w].at_barrier ||
        workers_[w].finished_steps != BarrierSteps()) {
      return false;
    }
  }
  return true;
}

void JobState::CheckpointAbandoned() {
  checkpoint_running_ = false;
  barrier_ = false;
}

void JobState::CheckpointFinished(int64_t step, int64_t now_ms) {
  checkpoint_running_ = false;
  barrier_ = false;
  last_checkpoint_step_ = step;
  last_checkpoint_ms_ = now_ms;
}

absl::Status JobState::Pause() {
  if (phase_ != Phase::kTraining) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot pause a job that is ", PhaseName(phase_)));
  }
  phase_ = Phase::kPaused;
  return absl::OkStatus();
}

void JobState::BeginStop() {
  if (Running()) phase_ = Phase::kStopping;
}

absl::Status JobState::Resume() {
  if (phase_ != Phase::kPaused) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot resume a job that is ", PhaseName(phase_)));
  }
  phase_ = Phase::kTraining;
  return absl::OkStatus();
}

}  // namespace towerps::scheduler
