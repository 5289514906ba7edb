// JobState's recovery rules (job_state.h): merging survivors into an adopted job,
// rollbacks and epochs.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "glog/logging.h"
#include "scheduler/job_state.h"

namespace towerps::scheduler {

absl::Status JobState::CheckPartitionReports(
    Role role, int rank, const std::vector<ps::PartitionProgress>& partitions) const {
  if (role == Role::kServer && !partitions.empty()) {
    return absl::InvalidArgumentError("a server's registration lists partitions");
  }
  for (const ps::PartitionProgress& p : partitions) {
    if (p.id < 0 || p.id >= static_cast<int>(partitions_.size()) || p.offset < 0 ||
        p.offset > kMaxReportedCount) {
      return absl::InvalidArgumentError(
          absl::StrCat("worker ", rank, " reports partition ", p.id, " at offset ", p.offset));
    }
  }
  return absl::OkStatus();
}

void JobState::MergePartitions(int rank, const std::vector<ps::PartitionProgress>& partitions) {
  for (const ps::PartitionProgress& reported : partitions) {
    PartitionInfo& p = partitions_[reported.id];
    const bool further = reported.offset >= p.resume_offset;
    p.resume_offset = std::max(p.resume_offset, reported.offset);
    p.done = p.done || reported.done;
    if (p.done) {
      p.owner = -1;
    } else if (p.owner == -1 || further) {
      p.owner = rank;  // it keeps reading where it is
    }
  }
}

absl::Status JobState::AdoptJob(int64_t step, absl::Span<const ps::PartitionProgress> partitions) {
  if (!partitions.empty()) {
    TOWERPS_RETURN_IF_ERROR(RestoreProgress(step, partitions));
  } else if (phase_ != Phase::kRegistering) {
    return absl::FailedPreconditionError("a job is adopted before training starts");
  }
  for (PartitionInfo& p : partitions_) p.owner = -1;  // survivors claim theirs
  adopting_ = true;
  adopted_global_step_ = step;
  last_checkpoint_step_ = step;
  return absl::OkStatus();
}

absl::Status JobState::RollbackTo(int64_t step,
                                  absl::Span<const ps::PartitionProgress> partitions) {
  if (!partitions.empty() && partitions.size() != partitions_.size()) {
    return absl::InvalidArgumentError(absl::StrCat("the checkpoint has ", partitions.size(),
                                                   " data partitions; this job has ",
                                                   partitions_.size()));
  }
  if (step < 0) return absl::InvalidArgumentError("negative checkpoint step");
  for (size_t p = 0; p < partitions_.size(); ++p) {
    partitions_[p].owner = -1;
    partitions_[p].resume_offset = partitions.empty() ? 0 : partitions[p].offset;
    partitions_[p].done = !partitions.empty() && partitions[p].done;
  }
  for (NodeInfo& w : workers_) w.finished_steps = 0;
  base_step_ = step;
  last_checkpoint_step_ = step;
  CheckpointAbandoned();
  ++epoch_;
  rollback_epoch_ = epoch_;
  rollback_step_ = step;
  LOG(WARNING) << "scheduler: the job rolled back to global step " << step << " (epoch " << epoch_
               << ")";
  return absl::OkStatus();
}

void JobState::AckEpoch(int rank) {
  if (FindNode(Role::kWorker, rank) != nullptr) workers_[rank].seen_epoch = epoch_;
}

}  // namespace towerps::scheduler
