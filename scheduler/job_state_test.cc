#include "scheduler/job_state.h"

#include <vector>

#include "gtest/gtest.h"
#include "scheduler/test_util.h"

namespace towerps::scheduler {
namespace {

void RegisterAll(JobState* job, int servers, int workers) {
  for (int s = 0; s < servers; ++s) {
    ASSERT_TRUE(job->Register(Role::kServer, -1, "tcp://127.0.0.1:1", 0).ok());
  }
  for (int w = 0; w < workers; ++w) ASSERT_TRUE(job->Register(Role::kWorker, -1, "", 0).ok());
}

TEST(JobStateTest, OptionsValidated) {
  EXPECT_TRUE(TestJobOptions(2, 2, 4, 0).Validate().ok());
  EXPECT_FALSE(TestJobOptions(0, 2, 4, 0).Validate().ok());
  EXPECT_FALSE(TestJobOptions(2, 3, 2, 0).Validate().ok());
}

TEST(JobStateTest, RegistrationAssignsRanksAndStartsTraining) {
  JobState job(TestJobOptions(2, 1, 1, 0));
  EXPECT_EQ(job.Register(Role::kServer, -1, "tcp://a", 0)->rank, 0);
  EXPECT_EQ(job.phase(), Phase::kRegistering);
  EXPECT_EQ(job.Register(Role::kServer, -1, "tcp://b", 0)->rank, 1);
  EXPECT_EQ(job.Register(Role::kServer, -1, "tcp://c", 0).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(job.Register(Role::kWorker, 5, "", 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(job.Register(Role::kWorker, 0, "", 0)->rank, 0);
  EXPECT_EQ(job.phase(), Phase::kTraining);
  // A new process for a held rank replaces the holder (recovery tests).
  EXPECT_TRUE(job.Register(Role::kWorker, 0, "", 0)->replaced);
  EXPECT_EQ(job.servers()[1].endpoint, "tcp://b");
}

TEST(JobStateTest, SynchronousStalenessZero) {
  JobState job(TestJobOptions(1, 2, 2, 0));
  RegisterAll(&job, 1, 2);
  EXPECT_TRUE(job.MayStartStep(0, 0));
  ASSERT_TRUE(job.ReportClock(0, 1, 10).ok());
  EXPECT_FALSE(job.MayStartStep(0, 1));  // worker 1 has not finished step 0
  ASSERT_TRUE(job.ReportClock(1, 1, 10).ok());
  EXPECT_TRUE(job.MayStartStep(0, 1));
  EXPECT_EQ(job.global_step(), 2);
  EXPECT_EQ(job.ReportClock(1, 0, 10).code(), absl::StatusCode::kInvalidArgument);
}

TEST(JobStateTest, BoundedAndUnboundedStaleness) {
  JobState bounded(TestJobOptions(1, 2, 2, 2));
  RegisterAll(&bounded, 1, 2);
  ASSERT_TRUE(bounded.ReportClock(0, 2, 0).ok());
  EXPECT_TRUE(bounded.MayStartStep(0, 2));  // 2 ahead of worker 1 (0 steps)
  ASSERT_TRUE(bounded.ReportClock(0, 3, 0).ok());
  EXPECT_FALSE(bounded.MayStartStep(0, 3));  // would be 3 ahead
  JobState async(TestJobOptions(1, 2, 2, -1));
  RegisterAll(&async, 1, 2);
  ASSERT_TRUE(async.ReportClock(0, 1000, 0).ok());
  EXPECT_TRUE(async.MayStartStep(0, 1000));
}

TEST(JobStateTest, FinishedWorkerStopsPacingOthers) {
  JobState job(TestJobOptions(1, 2, 2, 0));
  RegisterAll(&job, 1, 2);
  ASSERT_TRUE(job.ReportClock(0, 5, 0).ok());
  EXPECT_FALSE(job.MayStartStep(0, 5));
  ASSERT_TRUE(job.MarkWorkerFinished(1).ok());
  EXPECT_TRUE(job.MayStartStep(0, 5));
  EXPECT_FALSE(job.AllWorkersFinished());
  ASSERT_TRUE(job.MarkWorkerFinished(0).ok());
  EXPECT_TRUE(job.AllWorkersFinished());
}

TEST(JobStateTest, DeadWorkerIsDetectedAndItsPartitionsHandedOver) {
  JobState job(TestJobOptions(1, 2, 4, 0));
  RegisterAll(&job, 1, 2);
  ASSERT_TRUE(job.ReportPartition(1, 1, 700, false).ok());
  ASSERT_TRUE(job.ReportPartition(1, 3, 50, true).ok());
  EXPECT_EQ(job.ReportPartition(0, 1, 1, false).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(job.Heartbeat(Role::kWorker, 0, 900).ok());
  ASSERT_TRUE(job.Heartbeat(Role::kServer, 0, 900).ok());
  EXPECT_TRUE(job.DetectFailures(999).empty());
  std::vector<NodeInfo> dead = job.DetectFailures(1500);  // worker 1 silent since 0
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].role, Role::kWorker);
  EXPECT_EQ(dead[0].rank, 1);
  EXPECT_TRUE(job.DetectFailures(1600).empty());  // reported once
  EXPECT_EQ(job.Heartbeat(Role::kWorker, 1, 1600).code(), absl::StatusCode::kFailedPrecondition);
  // The dead worker no longer paces the live one.
  ASSERT_TRUE(job.ReportClock(0, 3, 1600).ok());
  EXPECT_TRUE(job.MayStartStep(0, 3));
  // Worker 0 finishes its own partitions, then takes over partition 1 at offset 700;
  // partition 3 was done and is not handed over.
  ASSERT_EQ(job.NextPartition(0)->id, 0);
  ASSERT_TRUE(job.ReportPartition(0, 0, 10, true).ok());
  ASSERT_EQ(job.NextPartition(0)->id, 2);
  ASSERT_TRUE(job.ReportPartition(0, 2, 10, true).ok());
  auto handed = job.NextPartition(0);
  ASSERT_TRUE(handed.has_value());
  EXPECT_EQ(handed->id, 1);
  EXPECT_EQ(handed->resume_offset, 700);
  ASSERT_TRUE(job.ReportPartition(0, 1, 900, true).ok());
  EXPECT_FALSE(job.NextPartition(0).has_value());
  EXPECT_TRUE(job.AllPartitionsDone());
  // A restarted worker takes the dead rank back.
  EXPECT_EQ(job.Register(Role::kWorker, -1, "", 2000)->rank, 1);
}

TEST(JobStateTest, CheckpointTriggers) {
  JobStateOptions o = TestJobOptions(1, 1, 1, -1);
  o.checkpoint_every_steps = 100;
  o.checkpoint_every_ms = 60000;
  JobState job(o);
  RegisterAll(&job, 1, 1);
  EXPECT_FALSE(job.CheckpointDue(10));
  ASSERT_TRUE(job.ReportClock(0, 100, 10).ok());
  EXPECT_TRUE(job.CheckpointDue(10));
  job.CheckpointStarted();
  EXPECT_FALSE(job.CheckpointDue(10));  // one at a time
  job.CheckpointFinished(100, 20);
  EXPECT_FALSE(job.CheckpointDue(30));
  EXPECT_TRUE(job.CheckpointDue(60020));  // by time
  EXPECT_EQ(job.last_checkpoint_step(), 100);
}

// A resumed job counts its global step on from the checkpoint's and hands each
// partition out at its recorded progress; done partitions stay done.
TEST(JobStateTest, RestoredProgressCarriesOn) {
  JobState job(TestJobOptions(1, 2, 3, -1));
  const std::vector<ps::PartitionProgress> wrong = {{0, 5, false}};
  EXPECT_EQ(job.RestoreProgress(100, wrong).code(), absl::StatusCode::kInvalidArgument);
  const std::vector<ps::PartitionProgress> progress = {
      {0, 640, false}, {1, 900, true}, {2, 0, false}};
  ASSERT_TRUE(job.RestoreProgress(100, progress).ok());
  RegisterAll(&job, 1, 2);
  EXPECT_EQ(job.global_step(), 100);
  ASSERT_TRUE(job.ReportClock(0, 7, 0).ok());
  EXPECT_EQ(job.global_step(), 107);
  auto first = job.NextPartition(0);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->id, 0);
  EXPECT_EQ(first->resume_offset, 640);
  auto second = job.NextPartition(1);  // partition 1 is done: worker 1 gets none of its own
  EXPECT_FALSE(second.has_value() && second->id == 1);
  EXPECT_EQ(job.RestoreProgress(0, progress).code(), absl::StatusCode::kFailedPrecondition)
      << "only before training starts";
}

TEST(JobStateTest, PauseAndResume) {
  JobState job(TestJobOptions(1, 1, 1, -1));
  EXPECT_EQ(job.Pause().code(), absl::StatusCode::kFailedPrecondition);
  RegisterAll(&job, 1, 1);
  ASSERT_TRUE(job.Pause().ok());
  EXPECT_FALSE(job.MayStartStep(0, 0));
  ASSERT_TRUE(job.Resume().ok());
  EXPECT_TRUE(job.MayStartStep(0, 0));
}

// Issue 12 item 2: worker 0 runs out of data while worker 1 (silent, about to be
// declared dead) still holds an unfinished partition. Worker 0 is told to wait, does
// not pace anyone meanwhile, takes the partition over once it is released, and the
// job is done only when every partition is.
TEST(JobStateTest, IdleWorkerWaitsForAndTakesOverReleasedPartitions) {
  JobState job(TestJobOptions(1, 2, 2, 0));
  RegisterAll(&job, 1, 2);
  ASSERT_TRUE(job.ReportPartition(1, 1, 300, false).ok());
  ASSERT_EQ(job.NextPartition(0)->id, 0);
  ASSERT_TRUE(job.ReportPartition(0, 0, 1000, true).ok());
  EXPECT_FALSE(job.NextPartition(0).has_value());
  EXPECT_TRUE(job.ShouldWaitForPartition());  // partition 1 is not done
  EXPECT_FALSE(job.AllPartitionsDone());
  // Worker 0 holds nothing: worker 1 may run ahead of it (staleness 0).
  ASSERT_TRUE(job.ReportClock(0, 2, 500).ok());
  ASSERT_TRUE(job.ReportClock(1, 9, 500).ok());
  EXPECT_TRUE(job.MayStartStep(1, 9));
  ASSERT_TRUE(job.Heartbeat(Role::kWorker, 0, 1400).ok());
  ASSERT_TRUE(job.Heartbeat(Role::kServer, 0, 1400).ok());
  EXPECT_TRUE(job.CheckStranded(1400).ok());
  ASSERT_EQ(job.DetectFailures(1600).size(), 1u);  // worker 1, silent since 500
  EXPECT_TRUE(job.CheckStranded(1600).ok()) << "worker 0 is alive to take partition 1";
  // A rank that is not a registered worker takes nothing (the wire is hostile).
  EXPECT_FALSE(job.NextPartition(7).has_value());
  EXPECT_FALSE(job.NextPartition(-3).has_value());
  auto taken = job.NextPartition(0);
  ASSERT_TRUE(taken.has_value());
  EXPECT_EQ(taken->id, 1);
  EXPECT_EQ(taken->resume_offset, 300);
  ASSERT_TRUE(job.ReportPartition(0, 1, 1000, true).ok());
  EXPECT_TRUE(job.AllPartitionsDone());
  EXPECT_FALSE(job.ShouldWaitForPartition());
}

// A worker that leaves (stops) releases its unfinished partitions at once; when no
// live worker is left to take them, the job fails after heartbeat_timeout_ms with a
// line naming the partitions and the workers.
TEST(JobStateTest, StrandedPartitionsFailTheJobNamingThem) {
  JobState job(TestJobOptions(1, 2, 3, -1));
  RegisterAll(&job, 1, 2);
  ASSERT_TRUE(job.ReportPartition(0, 0, 40, false).ok());
  ASSERT_TRUE(job.ReportPartition(1, 1, 70, false).ok());
  ASSERT_TRUE(job.MarkWorkerFinished(1).ok());  // leaves holding partition 1
  EXPECT_EQ(job.partitions()[1].owner, -1);
  EXPECT_EQ(job.partitions()[1].resume_offset, 70);
  ASSERT_TRUE(job.Heartbeat(Role::kServer, 0, 900).ok());
  EXPECT_TRUE(job.DetectFailures(1500).size() == 1u);  // worker 0; worker 1 left
  EXPECT_TRUE(job.CheckStranded(1500).ok());           // grace starts
  EXPECT_TRUE(job.CheckStranded(2500).ok());
  absl::Status stranded = job.CheckStranded(2501);
  EXPECT_EQ(stranded.code(), absl::StatusCode::kFailedPrecondition);
  const std::string message(stranded.message());
  EXPECT_NE(message.find("partitions 0 (at example 40), 1 (at example 70), 2 (at example 0)"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("dead workers: 0; stopped workers: 1"), std::string::npos) << message;
}

// A restarted worker that re-takes the dead rank within the grace rescues the job.
TEST(JobStateTest, RestartedWorkerEndsTheStrandedGrace) {
  JobState job(TestJobOptions(1, 1, 1, -1));
  RegisterAll(&job, 1, 1);
  ASSERT_TRUE(job.Heartbeat(Role::kServer, 0, 1500).ok());
  ASSERT_EQ(job.DetectFailures(1500).size(), 1u);
  EXPECT_TRUE(job.CheckStranded(1500).ok());
  ASSERT_EQ(job.Register(Role::kWorker, -1, "", 2000)->rank, 0);
  EXPECT_TRUE(job.CheckStranded(5000).ok());
  EXPECT_EQ(job.NextPartition(0)->id, 0);
}

// Stopping: no partition is handed out, nobody may start a step, a stranded
// partition does not fail the job, and progress may still be reported.
TEST(JobStateTest, StoppingJobHandsOutNothing) {
  JobState job(TestJobOptions(1, 2, 2, -1));
  RegisterAll(&job, 1, 2);
  job.BeginStop();
  EXPECT_EQ(job.phase(), Phase::kStopping);
  EXPECT_FALSE(job.MayStartStep(0, 0));
  EXPECT_FALSE(job.NextPartition(0).has_value());
  EXPECT_FALSE(job.ShouldWaitForPartition());
  ASSERT_TRUE(job.ReportPartition(0, 0, 64, false).ok());
  ASSERT_TRUE(job.MarkWorkerFinished(0).ok());
  ASSERT_TRUE(job.MarkWorkerFinished(1).ok());
  EXPECT_TRUE(job.AllWorkersFinished());
  EXPECT_TRUE(job.CheckStranded(1000000).ok());
  EXPECT_EQ(job.partitions()[0].resume_offset, 64);
  EXPECT_STREQ(PhaseName(Phase::kStopping), "stopping");
}

}  // namespace
}  // namespace towerps::scheduler
