#include "scheduler/job_state.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "glog/logging.h"
#include "net/membership_client.h"

namespace towerps::scheduler {

const char* RoleName(Role role) { return role == Role::kServer ? "ps" : "worker"; }

const char* PhaseName(Phase phase) { return net::PhaseName(static_cast<uint8_t>(phase)); }

absl::Status JobStateOptions::Validate() const {
  if (num_servers <= 0) return absl::InvalidArgumentError("num_servers must be > 0");
  if (num_workers <= 0) return absl::InvalidArgumentError("num_workers must be > 0");
  if (num_partitions < num_workers) {
    return absl::InvalidArgumentError(absl::StrCat("num_partitions (", num_partitions,
                                                   ") must be >= num_workers (", num_workers,
                                                   ")"));
  }
  if (heartbeat_timeout_ms <= 0) {
    return absl::InvalidArgumentError("heartbeat_timeout_ms must be > 0");
  }
  if (checkpoint_every_steps < 0 || checkpoint_every_ms < 0) {
    return absl::InvalidArgumentError("checkpoint intervals must be >= 0");
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

absl::StatusOr<int> JobState::Register(Role role, int rank, const std::string& endpoint,
                                       int64_t now_ms) {
  std::vector<NodeInfo>& nodes = *NodesOf(role);
  const int size = static_cast<int>(nodes.size());
  if (rank >= size || rank < -1) {
    return absl::InvalidArgumentError(
        absl::StrCat(RoleName(role), " rank ", rank, " is out of range [0, ", size, ")"));
  }
  if (rank == -1) {
    for (int r = 0; r < size && rank == -1; ++r) {
      if (nodes[r].rank < 0) rank = r;
    }
    if (rank == -1) {
      for (int r = 0; r < size && rank == -1; ++r) {
        if (!nodes[r].alive) rank = r;  // take over a dead node's rank
      }
    }
    if (rank == -1) {
      return absl::ResourceExhaustedError(
          absl::StrCat("all ", size, " ", RoleName(role), " ranks are taken"));
    }
  } else if (nodes[rank].alive) {
    return absl::AlreadyExistsError(
        absl::StrCat(RoleName(role), " rank ", rank, " is held by a live node"));
  }
  NodeInfo& node = nodes[rank];
  const bool restart = node.rank >= 0;
  node.role = role;
  node.rank = rank;
  node.endpoint = endpoint;
  node.alive = true;
  node.last_heartbeat_ms = now_ms;
  LOG(INFO) << "scheduler: " << RoleName(role) << " " << rank
            << (restart ? " re-registered" : " registered")
            << (endpoint.empty() ? "" : " at " + endpoint);
  if (phase_ == Phase::kRegistering) {
    bool all = true;
    for (const auto& n : servers_) all = all && n.alive;
    for (const auto& n : workers_) all = all && n.alive;
    if (all) {
      phase_ = Phase::kTraining;
      last_checkpoint_ms_ = now_ms;
      LOG(INFO) << "scheduler: all " << servers_.size() << " servers and " << workers_.size()
                << " workers registered; training";
    }
  }
  return rank;
}

absl::Status JobState::Heartbeat(Role role, int rank, int64_t now_ms) {
  std::vector<NodeInfo>& nodes = *NodesOf(role);
  if (rank < 0 || rank >= static_cast<int>(nodes.size()) || nodes[rank].rank < 0) {
    return absl::NotFoundError(absl::StrCat(RoleName(role), " ", rank, " is not registered"));
  }
  if (!nodes[rank].alive) {
    return absl::FailedPreconditionError(
        absl::StrCat(RoleName(role), " ", rank, " was declared dead; register again"));
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

absl::Status JobState::ReportClock(int rank, int64_t finished_steps, int64_t now_ms) {
  if (FindNode(Role::kWorker, rank) == nullptr) {
    return absl::NotFoundError(absl::StrCat("worker ", rank, " is not registered"));
  }
  NodeInfo& node = workers_[rank];
  if (finished_steps < node.finished_steps) {
    return absl::InvalidArgumentError(absl::StrCat("worker ", rank, " clock went back from ",
                                                   node.finished_steps, " to ",
                                                   finished_steps));
  }
  node.finished_steps = finished_steps;
  if (node.alive) node.last_heartbeat_ms = now_ms;
  return absl::OkStatus();
}

int64_t JobState::SlowestLiveWorkerSteps() const {
  std::vector<bool> holds(workers_.size(), false);  // an unfinished partition
  for (const PartitionInfo& p : partitions_) {
    if (p.owner >= 0 && p.owner < static_cast<int>(holds.size()) && !p.done) {
      holds[p.owner] = true;
    }
  }
  int64_t slowest = std::numeric_limits<int64_t>::max();
  for (size_t w = 0; w < workers_.size(); ++w) {
    const NodeInfo& node = workers_[w];
    if (node.alive && !node.finished && holds[w]) {
      slowest = std::min(slowest, node.finished_steps);
    }
  }
  return slowest;
}

bool JobState::MayStartStep(int rank, int64_t step) const {
  if (phase_ != Phase::kTraining) return false;
  if (options_.staleness < 0) return true;
  const NodeInfo* self = FindNode(Role::kWorker, rank);
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
  if (!Running() || FindNode(Role::kWorker, rank) == nullptr) return std::nullopt;
  for (PartitionInfo& p : partitions_) {
    if (p.owner == rank && !p.done) return p;
  }
  for (PartitionInfo& p : partitions_) {
    if (p.owner == -1 && !p.done) {
      p.owner = rank;
      LOG(INFO) << "scheduler: partition " << p.id << " handed to worker " << rank
                << " at offset " << p.resume_offset;
      return p;
    }
  }
  return std::nullopt;
}

absl::Status JobState::ReportPartition(int rank, int partition, int64_t offset, bool done) {
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
  return phase_ == Phase::kRegistering || phase_ == Phase::kTraining || phase_ == Phase::kPaused;
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

void JobState::CheckpointFinished(int64_t step, int64_t now_ms) {
  checkpoint_running_ = false;
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
