// JobState's recovery rules: replacement of held ranks, clock-carried progress,
// rollbacks and epochs, adopting a job after a scheduler restart, and the
// synchronous checkpoint barrier.
#include <vector>

#include "gtest/gtest.h"
#include "scheduler/job_state.h"
#include "scheduler/test_util.h"

namespace towerps::scheduler {
namespace {

constexpr uint64_t kJob = 0xabc;

JobState MakeJob(int servers, int workers, int partitions, int64_t staleness,
                 int64_t checkpoint_clock_multiple = 1) {
  JobStateOptions o = TestJobOptions(servers, workers, partitions, staleness);
  o.checkpoint_clock_multiple = checkpoint_clock_multiple;
  EXPECT_TRUE(o.Validate().ok());
  JobState job(o);
  job.set_job_id(kJob);
  return job;
}

void RegisterAll(JobState* job, int servers, int workers) {
  for (int s = 0; s < servers; ++s) {
    ASSERT_TRUE(job->Register(Role::kServer, s, "tcp://127.0.0.1:" + std::to_string(s), 0).ok());
  }
  for (int w = 0; w < workers; ++w) ASSERT_TRUE(job->Register(Role::kWorker, w, "", 0).ok());
}

Registration OfThisJob(int64_t finished, int64_t global_step,
                       std::vector<ps::PartitionProgress> partitions = {}) {
  Registration r;
  r.job_id = kJob;
  r.finished_steps = finished;
  r.global_step = global_step;
  r.partitions = std::move(partitions);
  return r;
}

TEST(JobStateRecoveryTest, EpochsStartAtOneWithoutRollback) {
  JobState job = MakeJob(1, 1, 1, -1);
  EXPECT_EQ(job.epoch(), 1u);
  EXPECT_EQ(job.rollback_epoch(), 0u);
  EXPECT_EQ(job.rollback_step(), -1);
  job.BumpEpoch();
  EXPECT_EQ(job.epoch(), 2u);
  EXPECT_EQ(job.rollback_epoch(), 0u);
}

TEST(JobStateRecoveryTest, NewServerProcessReplacesTheLiveHolder) {
  JobState job = MakeJob(2, 1, 1, -1);
  RegisterAll(&job, 2, 1);
  ASSERT_EQ(job.phase(), Phase::kTraining);
  // The same process retrying (same job id and endpoint): nothing changes.
  auto retry = job.Register(Role::kServer, 1, "tcp://127.0.0.1:1", 10, OfThisJob(0, -1));
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(retry->survivor);
  EXPECT_FALSE(retry->replaced);
  // A new process (job id 0) for a held rank: the old holder is replaced.
  auto replaced = job.Register(Role::kServer, 1, "tcp://127.0.0.1:9", 20);
  ASSERT_TRUE(replaced.ok());
  EXPECT_TRUE(replaced->replaced);
  EXPECT_FALSE(replaced->survivor);
  EXPECT_EQ(job.servers()[1].endpoint, "tcp://127.0.0.1:9");
  EXPECT_TRUE(job.servers()[1].alive);
  // The old process (this job, another endpoint) is refused: it must exit.
  EXPECT_EQ(
      job.Register(Role::kServer, 1, "tcp://127.0.0.1:1", 30, OfThisJob(0, -1)).status().code(),
      absl::StatusCode::kFailedPrecondition);
  // A process of another job is refused.
  Registration foreign = OfThisJob(0, -1);
  foreign.job_id = 0x999;
  EXPECT_EQ(job.Register(Role::kServer, 0, "tcp://x", 30, foreign).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(JobStateRecoveryTest, HeartbeatsOfUnknownAndDeadNodes) {
  JobState job = MakeJob(1, 1, 1, -1);
  EXPECT_EQ(job.Heartbeat(Role::kServer, 0, 0).code(), absl::StatusCode::kNotFound);
  RegisterAll(&job, 1, 1);
  ASSERT_TRUE(job.Heartbeat(Role::kWorker, 0, 1500).ok());
  ASSERT_EQ(job.DetectFailures(1500).size(), 1u);  // the server
  EXPECT_EQ(job.Heartbeat(Role::kServer, 0, 1600).code(), absl::StatusCode::kFailedPrecondition);
  // Its restarted process takes the rank back.
  EXPECT_FALSE(job.Register(Role::kServer, 0, "tcp://new", 1700)->replaced);
  EXPECT_TRUE(job.Heartbeat(Role::kServer, 0, 1800).ok());
}

TEST(JobStateRecoveryTest, ClockCarriesPartitionProgressOfItsOwner) {
  JobState job = MakeJob(1, 2, 2, -1);
  RegisterAll(&job, 1, 2);
  ASSERT_EQ(job.NextPartition(0)->id, 0);
  ASSERT_TRUE(job.ReportClock(0, 3, 10, /*partition=*/0, /*offset=*/96).ok());
  EXPECT_EQ(job.partitions()[0].resume_offset, 96);
  // Worker 1 does not own partition 0: its report moves nothing (not an error).
  ASSERT_TRUE(job.ReportClock(1, 1, 10, 0, 500).ok());
  EXPECT_EQ(job.partitions()[0].resume_offset, 96);
  // Out of range: ignored too.
  ASSERT_TRUE(job.ReportClock(1, 2, 10, 7, 500).ok());
  EXPECT_EQ(job.workers()[1].finished_steps, 2);
}

TEST(JobStateRecoveryTest, ReplacedWorkerContinuesTheRanksClock) {
  JobState job = MakeJob(1, 2, 2, 0);
  RegisterAll(&job, 1, 2);
  ASSERT_EQ(job.NextPartition(0)->id, 0);
  ASSERT_EQ(job.NextPartition(1)->id, 1);
  ASSERT_TRUE(job.ReportClock(0, 7, 10, 0, 70).ok());
  ASSERT_TRUE(job.ReportClock(1, 7, 10, 1, 77).ok());
  auto replaced = job.Register(Role::kWorker, 0, "", 20);
  ASSERT_TRUE(replaced.ok());
  EXPECT_TRUE(replaced->replaced);
  EXPECT_EQ(replaced->finished_steps, 7);
  EXPECT_EQ(job.partitions()[0].owner, -1);  // released at its reported offset
  EXPECT_EQ(job.partitions()[0].resume_offset, 70);
  EXPECT_EQ(job.global_step(), 14);
  auto next = job.NextPartition(0);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->id, 0);
  EXPECT_EQ(next->resume_offset, 70);
  EXPECT_TRUE(job.MayStartStep(0, 7));  // bounded staleness stays consistent
}

TEST(JobStateRecoveryTest, RollbackResetsProgressAndMakesWorkersStale) {
  JobState job = MakeJob(1, 2, 2, 0);
  RegisterAll(&job, 1, 2);
  ASSERT_EQ(job.NextPartition(0)->id, 0);
  ASSERT_EQ(job.NextPartition(1)->id, 1);
  ASSERT_TRUE(job.ReportClock(0, 9, 10, 0, 90).ok());
  ASSERT_TRUE(job.ReportClock(1, 9, 10, 1, 95).ok());
  const std::vector<ps::PartitionProgress> manifest = {{0, 40, false}, {1, 44, true}};
  EXPECT_EQ(job.RollbackTo(8, std::vector<ps::PartitionProgress>(3)).code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(job.RollbackTo(8, manifest).ok());
  EXPECT_EQ(job.global_step(), 8);
  EXPECT_EQ(job.epoch(), 2u);
  EXPECT_EQ(job.rollback_epoch(), 2u);
  EXPECT_EQ(job.rollback_step(), 8);
  EXPECT_EQ(job.workers()[0].finished_steps, 0);
  EXPECT_EQ(job.partitions()[0].owner, -1);
  EXPECT_EQ(job.partitions()[0].resume_offset, 40);
  EXPECT_TRUE(job.partitions()[1].done);
  EXPECT_EQ(job.last_checkpoint_step(), 8);
  // Until a worker reads the new view its reports are from before the rollback.
  ASSERT_TRUE(job.ReportClock(0, 10, 20, 0, 100).ok());
  EXPECT_EQ(job.workers()[0].finished_steps, 0);
  EXPECT_FALSE(job.MayStartStep(0, 0));
  EXPECT_FALSE(job.NextPartition(0).has_value());
  ASSERT_TRUE(job.ReportPartition(0, 0, 100, true).ok());  // ignored
  EXPECT_FALSE(job.partitions()[0].done);
  job.AckEpoch(0);
  job.AckEpoch(1);
  auto next = job.NextPartition(0);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->id, 0);
  EXPECT_EQ(next->resume_offset, 40);
  EXPECT_TRUE(job.MayStartStep(0, 0));
  ASSERT_TRUE(job.ReportClock(0, 1, 30, 0, 45).ok());
  EXPECT_EQ(job.global_step(), 9);
  EXPECT_EQ(job.partitions()[0].resume_offset, 45);
}

TEST(JobStateRecoveryTest, RollbackWithoutCheckpointStartsOver) {
  JobState job = MakeJob(1, 1, 2, 0);
  RegisterAll(&job, 1, 1);
  ASSERT_TRUE(job.ReportPartition(0, 0, 100, true).ok());
  ASSERT_TRUE(job.ReportClock(0, 4, 10).ok());
  ASSERT_TRUE(job.RollbackTo(0, {}).ok());
  EXPECT_EQ(job.global_step(), 0);
  EXPECT_FALSE(job.partitions()[0].done);
  EXPECT_EQ(job.partitions()[0].resume_offset, 0);
}

TEST(JobStateRecoveryTest, AdoptedJobMergesSurvivors) {
  JobState job = MakeJob(2, 3, 3, -1);
  job.set_epoch(5);
  const std::vector<ps::PartitionProgress> baseline = {
      {0, 50, false}, {1, 60, false}, {2, 0, false}};
  ASSERT_TRUE(job.AdoptJob(100, baseline).ok());
  EXPECT_TRUE(job.adopting());
  // A surviving server keeps its state; a new one is a replacement.
  EXPECT_TRUE(job.Register(Role::kServer, 0, "tcp://a", 0, OfThisJob(0, 130))->survivor);
  EXPECT_FALSE(job.Register(Role::kServer, 1, "tcp://b", 0)->survivor);
  // Survivors bring their clocks, global steps and partitions.
  auto w0 = job.Register(Role::kWorker, 0, "", 0, OfThisJob(30, 140, {{0, 80, false}}));
  ASSERT_TRUE(w0.ok()) << w0.status();
  EXPECT_TRUE(w0->survivor);
  EXPECT_EQ(w0->finished_steps, 30);
  EXPECT_EQ(
      job.Register(Role::kWorker, 1, "", 0, OfThisJob(20, 150, {{1, 55, true}, {0, 10, false}}))
          ->finished_steps,
      20);
  // A partition out of range is refused, nothing merged.
  EXPECT_EQ(job.Register(Role::kWorker, 2, "", 0, OfThisJob(1, 1, {{9, 1, false}})).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(job.phase(), Phase::kRegistering);
  // A new worker continues from the slowest survivor's clock.
  auto w2 = job.Register(Role::kWorker, 2, "", 0);
  ASSERT_TRUE(w2.ok());
  EXPECT_EQ(w2->finished_steps, 20);
  EXPECT_EQ(job.phase(), Phase::kTraining);
  EXPECT_FALSE(job.adopting());
  EXPECT_EQ(job.epoch(), 6u);         // workers re-read the cluster
  EXPECT_EQ(job.global_step(), 150);  // max(100, 140, 150, 30 + 20 + 20)
  EXPECT_EQ(job.partitions()[0].resume_offset, 80);
  EXPECT_EQ(job.partitions()[0].owner, 0);
  EXPECT_TRUE(job.partitions()[1].done);
  EXPECT_EQ(job.partitions()[1].resume_offset, 60);
  EXPECT_EQ(job.partitions()[2].owner, -1);
  EXPECT_EQ(job.NextPartition(2)->id, 2);
  ASSERT_TRUE(job.ReportClock(0, 31, 10).ok());
  EXPECT_EQ(job.global_step(), 151);
}

// A hostile registration or clock (counts that would overflow the global step, an
// offset out of range, partitions from a server) is refused before anything changes:
// the rank's holder stays alive and its clock is kept.
TEST(JobStateRecoveryTest, HostileReportsAreRefusedBeforeAnythingChanges) {
  JobState job = MakeJob(1, 1, 1, -1);
  RegisterAll(&job, 1, 1);
  ASSERT_TRUE(job.ReportClock(0, 7, 0).ok());
  const int64_t huge = kMaxReportedCount + 1;
  for (const Registration& bad :
       {OfThisJob(huge, 1), OfThisJob(1, huge), OfThisJob(1, -2), OfThisJob(-1, 1),
        OfThisJob(1, 1, {{0, huge, false}}), OfThisJob(1, 1, {{0, -1, false}})}) {
    EXPECT_EQ(job.Register(Role::kWorker, 0, "", 0, bad).status().code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(job.workers()[0].alive);
    EXPECT_EQ(job.workers()[0].finished_steps, 7);
  }
  EXPECT_EQ(job.Register(Role::kServer, 0, "tcp://x", 0, OfThisJob(0, 1, {{0, 1, false}}))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(job.servers()[0].alive);
  EXPECT_EQ(job.ReportClock(0, huge, 1).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(job.ReportClock(0, 8, 1, 0, huge).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(job.workers()[0].finished_steps, 7);
}

// A restarted scheduler hears from a worker before its watch re-registered it: its
// reports are NotFound (the worker retries after rejoining), never a refusal.
TEST(JobStateRecoveryTest, ReportsOfAWorkerNotBackYetAreNotFound) {
  JobState job = MakeJob(1, 1, 1, -1);
  ASSERT_TRUE(job.AdoptJob(0, {}).ok());
  EXPECT_EQ(job.ReportPartition(0, 0, 64, false).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(job.ReportClock(0, 3, 10).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(job.Register(Role::kServer, 0, "tcp://a", 0, OfThisJob(0, -1)).ok());
  Registration back = OfThisJob(3, 3);
  back.partitions.push_back({0, 64, false});
  ASSERT_TRUE(job.Register(Role::kWorker, 0, "", 0, back).ok());
  EXPECT_TRUE(job.ReportPartition(0, 0, 128, false).ok());
}

TEST(JobStateRecoveryTest, AdoptedGlobalStepIsAtLeastTheSumOfClocks) {
  JobState job = MakeJob(1, 1, 1, -1);
  ASSERT_TRUE(job.AdoptJob(0, {}).ok());
  ASSERT_TRUE(job.Register(Role::kServer, 0, "tcp://a", 0, OfThisJob(0, -1)).ok());
  ASSERT_TRUE(job.Register(Role::kWorker, 0, "", 0, OfThisJob(40, 35)).ok());
  EXPECT_EQ(job.global_step(), 40);
}

TEST(JobStateRecoveryTest, SynchronousCheckpointBarrier) {
  JobStateOptions o;
  o.num_servers = 1;
  o.num_workers = 2;
  o.num_partitions = 2;
  o.staleness = 0;
  o.checkpoint_every_steps = 8;
  JobState job(o);
  RegisterAll(&job, 1, 2);
  ASSERT_TRUE(job.ReportClock(0, 5, 10).ok());
  ASSERT_TRUE(job.ReportClock(1, 4, 10).ok());
  ASSERT_TRUE(job.CheckpointDue(10));
  job.CheckpointStarted();
  EXPECT_FALSE(job.CheckpointDue(10));
  EXPECT_FALSE(job.CheckpointBarrierReached());
  EXPECT_TRUE(job.RequestStep(1, 4));   // behind: catches up
  EXPECT_FALSE(job.RequestStep(0, 5));  // ahead: waits for the checkpoint
  ASSERT_TRUE(job.ReportClock(1, 5, 20).ok());
  // Worker 1 finished as many steps, but has not asked for the next one yet: it
  // may still be inside a step (pushing).
  EXPECT_FALSE(job.CheckpointBarrierReached());
  EXPECT_FALSE(job.RequestStep(1, 5));
  EXPECT_TRUE(job.CheckpointBarrierReached());
  job.CheckpointFinished(job.global_step(), 20);
  EXPECT_TRUE(job.MayStartStep(0, 5));
  EXPECT_EQ(job.last_checkpoint_step(), 10);
}

// A single worker that was granted its step before the barrier began is inside it:
// the checkpoint waits until it asks for the next one.
TEST(JobStateRecoveryTest, BarrierWaitsForAWorkerInsideItsStep) {
  JobState job = MakeJob(1, 1, 1, 0);
  RegisterAll(&job, 1, 1);
  ASSERT_TRUE(job.ReportClock(0, 3, 10).ok());
  ASSERT_TRUE(job.RequestStep(0, 3));  // step 3 runs
  job.CheckpointStarted();
  EXPECT_FALSE(job.CheckpointBarrierReached());
  ASSERT_TRUE(job.ReportClock(0, 4, 20).ok());
  EXPECT_FALSE(job.RequestStep(0, 4));
  EXPECT_TRUE(job.CheckpointBarrierReached());
}

// With dense gradients averaged over 4 steps the barrier holds the workers at a
// clock that is a multiple of 4 (none holds dense gradients there), so the checkpoint
// is a point a rolled-back job can replay from exactly.
TEST(JobStateRecoveryTest, SynchronousBarrierWaitsForAMultipleOfTheDenseSync) {
  JobState job = MakeJob(1, 1, 1, 0, /*checkpoint_clock_multiple=*/4);
  RegisterAll(&job, 1, 1);
  ASSERT_TRUE(job.ReportClock(0, 5, 10).ok());
  job.CheckpointStarted();
  for (int64_t step = 5; step < 8; ++step) {
    EXPECT_TRUE(job.RequestStep(0, step)) << step;
    EXPECT_FALSE(job.CheckpointBarrierReached());
    ASSERT_TRUE(job.ReportClock(0, step + 1, 20).ok());
  }
  EXPECT_FALSE(job.RequestStep(0, 8));
  EXPECT_TRUE(job.CheckpointBarrierReached());
  EXPECT_EQ(job.global_step(), 8);
  JobStateOptions zero;
  zero.checkpoint_clock_multiple = 0;
  EXPECT_FALSE(zero.Validate().ok());
}

TEST(JobStateRecoveryTest, AsynchronousCheckpointHasNoBarrier) {
  JobState job = MakeJob(1, 2, 2, -1);
  RegisterAll(&job, 1, 2);
  ASSERT_TRUE(job.ReportClock(0, 5, 10).ok());
  job.CheckpointStarted();
  EXPECT_TRUE(job.CheckpointBarrierReached());
  EXPECT_TRUE(job.MayStartStep(0, 5));
}

}  // namespace
}  // namespace towerps::scheduler
