#include "scheduler/status_view.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "scheduler/status_watch.h"

namespace towerps::scheduler {
namespace {

constexpr char kStatus[] = R"({"phase":"training","global_step":1200,"planned_steps":4800,
  "epoch":2,"lr_scale":0.85,"staleness":1,"elapsed_s":95.5,"steps_per_s":12.5,
  "examples_per_s":3200,"eta_s":288,"loss":4.25,
  "servers":[{"rank":0,"alive":true,"endpoint":"tcp://127.0.0.1:4001","last_seen_s":0.25},
             {"rank":1,"alive":false,"endpoint":"tcp://127.0.0.1:4002","last_seen_s":31}],
  "workers":[{"rank":0,"alive":true,"steps":610,"finished":false,"loss":4.5,"examples":19520,
              "last_seen_s":0.1},
             {"rank":1,"alive":true,"steps":590,"finished":true,"loss":4.0,"examples":18880,
              "last_seen_s":2}],
  "partitions_done":3,"partitions":8,"last_checkpoint":"run/checkpoint/step-1000",
  "last_checkpoint_step":1000,"last_checkpoint_age_s":45})";

TEST(StatusViewTest, ParsesEveryKey) {
  auto s = ParseStatusJson(kStatus);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->phase, "training");
  EXPECT_EQ(s->global_step, 1200);
  EXPECT_EQ(s->planned_steps, 4800);
  EXPECT_DOUBLE_EQ(s->examples_per_s, 3200);
  EXPECT_DOUBLE_EQ(s->eta_s, 288);
  EXPECT_DOUBLE_EQ(s->loss, 4.25);
  ASSERT_EQ(s->servers.size(), 2u);
  EXPECT_FALSE(s->servers[1].alive);
  ASSERT_EQ(s->workers.size(), 2u);
  EXPECT_EQ(s->workers[1].examples, 18880);
  EXPECT_TRUE(s->workers[1].finished);
  EXPECT_EQ(s->last_checkpoint_step, 1000);
}

TEST(StatusViewTest, TheLineIsTrainsProgressLine) {
  auto s = ParseStatusJson(kStatus);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(RenderStatusLine(*s),
            "step   1200/4800  loss 4.2500      3200 examples/s  lr x0.850  ETA  288s");
}

TEST(StatusViewTest, TheScreenShowsTheJob) {
  auto s = ParseStatusJson(kStatus);
  ASSERT_TRUE(s.ok());
  const std::string screen = RenderStatusScreen(*s, 80);
  for (const char* part :
       {"towerps job: training", "elapsed 1m36s", "step 1200/4800 [", "]  25.0%", "ETA 4m48s",
        "3200 examples/s", "12.5 steps/s", "loss 4.2500", "lr x0.850", "partitions 3/8 done",
        "last checkpoint: step 1000, 45s ago  run/checkpoint/step-1000", "servers (2)",
        "tcp://127.0.0.1:4002", "dead", "workers (2)", "left", "19520", "4.5000"}) {
    EXPECT_TRUE(absl::StrContains(screen, part)) << part << "\n" << screen;
  }
  for (absl::string_view line : absl::StrSplit(screen, '\n')) EXPECT_LE(line.size(), 80u) << line;
  // A quarter of the bar is filled.
  const size_t open = screen.find('[');
  const size_t close = screen.find(']');
  const std::string bar = screen.substr(open + 1, close - open - 1);
  EXPECT_EQ(std::count(bar.begin(), bar.end(), '#'), static_cast<long>(bar.size() / 4));
}

TEST(StatusViewTest, AnOlderSchedulersStatusReadsAsUnknown) {
  auto s = ParseStatusJson(R"({"phase":"registering","global_step":0,"servers":[],
    "workers":[{"rank":-1,"alive":false,"steps":0,"finished":false}],"last_checkpoint":""})");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->planned_steps, 0);
  EXPECT_TRUE(std::isnan(s->loss));
  EXPECT_EQ(s->eta_s, -1);
  EXPECT_EQ(RenderStatusLine(*s),
            "step      0/?  loss -         0 examples/s  lr x0.000  ETA    ?");
  const std::string screen = RenderStatusScreen(*s);
  EXPECT_TRUE(absl::StrContains(screen, "last checkpoint: none yet")) << screen;
  EXPECT_TRUE(absl::StrContains(screen, "waiting")) << screen;
}

TEST(StatusViewTest, GarbageIsAnErrorAndHostileValuesAreTamed) {
  for (const char* bad : {"", "not json", "[1,2]", "{\"phase\":3}", "{\"global_step\":1}",
                          "{\"phase\":\"training\"", "\xff\xfe"}) {
    EXPECT_FALSE(ParseStatusJson(bad).ok()) << bad;
  }
  auto s = ParseStatusJson(R"({"phase":"train\u001b[2Jing","global_step":1e300,
    "planned_steps":18446744073709551615,"loss":"high","examples_per_s":-5,"eta_s":null,
    "servers":{"rank":0},"workers":[7,"x",{"rank":"zero","endpoint":"\u0007bell"}],
    "last_checkpoint":"\u001b]0;title\u0007dir"})");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->phase, "train[2Jing");  // no escape reaches the terminal
  EXPECT_EQ(s->global_step, 0);        // out of range: unknown
  EXPECT_EQ(s->planned_steps, INT64_MAX);
  EXPECT_TRUE(std::isnan(s->loss));
  EXPECT_EQ(s->eta_s, -1);
  EXPECT_TRUE(s->servers.empty());
  ASSERT_EQ(s->workers.size(), 1u);
  EXPECT_EQ(s->workers[0].rank, -1);
  const std::string screen = RenderStatusScreen(*s);
  EXPECT_EQ(screen.find('\x1b'), std::string::npos);
  EXPECT_EQ(screen.find('\x07'), std::string::npos);
  (void)RenderStatusLine(*s);
}

TEST(StatusViewTest, FormatSeconds) {
  EXPECT_EQ(FormatSeconds(-1), "?");
  EXPECT_EQ(FormatSeconds(std::nan("")), "?");
  EXPECT_EQ(FormatSeconds(44.6), "45s");
  EXPECT_EQ(FormatSeconds(187), "3m07s");
  EXPECT_EQ(FormatSeconds(7500), "2h05m");
}

// The watch against a scripted scheduler.
class StatusWatchTest : public ::testing::Test {
 protected:
  int Watch(bool screen, int64_t give_up_ms = 0) {
    StatusWatchOptions options;
    options.interval_ms = 1;
    options.give_up_ms = give_up_ms;
    options.screen = screen;
    StatusWatchIo io;
    io.fetch = [this]() -> absl::StatusOr<std::string> {
      clock_.AdvanceMicros(1000000);  // a second per request
      ++fetches_;
      if (replies_.empty()) return absl::UnavailableError("no answer");
      absl::StatusOr<std::string> reply = replies_.front();
      replies_.pop_front();
      return reply;
    };
    io.job_file_state = [this] { return job_file_state_; };
    io.write = [this](const std::string& text) { out_ += text; };
    io.clock = &clock_;
    return WatchStatus(options, io);
  }
  static std::string Status(const char* phase, int64_t step) {
    return absl::StrCat(R"({"phase":")", phase, R"(","global_step":)", step,
                        R"(,"planned_steps":100,"examples_per_s":640,"loss":2.5,"eta_s":9})");
  }

  FakeClock clock_;
  std::deque<absl::StatusOr<std::string>> replies_;
  std::string job_file_state_;
  std::string out_;
  int fetches_ = 0;
};

TEST_F(StatusWatchTest, LinesUntilDoneThroughAnOutageAndGarbage) {
  replies_ = {absl::UnavailableError("starting"),
              Status("registering", 0),
              Status("training", 10),
              absl::UnavailableError("restarting"),
              absl::UnavailableError("restarting"),
              std::string("garbage"),
              Status("training", 50),
              Status("done", 100)};
  EXPECT_EQ(Watch(/*screen=*/false), 0);
  EXPECT_EQ(fetches_, 8);
  EXPECT_EQ(out_,
            "scheduler unreachable, retrying (starting)\n"
            "job phase: registering\n"
            "step      0/100  loss 2.5000       640 examples/s  lr x0.000  ETA    9s\n"
            "job phase: training\n"
            "step     10/100  loss 2.5000       640 examples/s  lr x0.000  ETA    9s\n"
            "scheduler unreachable, retrying (restarting)\n"
            "bad status reply: the status reply is not a JSON object\n"
            "step     50/100  loss 2.5000       640 examples/s  lr x0.000  ETA    9s\n"
            "job phase: done\n"
            "step    100/100  loss 2.5000       640 examples/s  lr x0.000  ETA    9s\n"
            "the job is done\n");
}

TEST_F(StatusWatchTest, AFailedJobExitsOne) {
  replies_ = {Status("training", 10), Status("failed", 12)};
  EXPECT_EQ(Watch(false), 1);
  EXPECT_TRUE(absl::StrContains(out_, "the job failed")) << out_;
}

TEST_F(StatusWatchTest, GivesUpOnlyWhenAskedTo) {
  EXPECT_EQ(Watch(false, /*give_up_ms=*/5000), 1);
  EXPECT_EQ(fetches_, 5);
  EXPECT_TRUE(absl::StrContains(out_, "giving up")) << out_;
}

TEST_F(StatusWatchTest, AGoneSchedulerOfASeenJobEndsAsItsJobFileSays) {
  job_file_state_ = "done";
  replies_ = {Status("training", 10)};
  EXPECT_EQ(Watch(false), 0);
  EXPECT_TRUE(absl::StrContains(out_, "the job is done (its scheduler has exited)")) << out_;
}

TEST_F(StatusWatchTest, AStaleJobFileIsNotBelievedBeforeTheJobIsSeen) {
  job_file_state_ = "done";  // a previous job's
  replies_ = {absl::UnavailableError("starting"), Status("done", 100)};
  EXPECT_EQ(Watch(false), 0);
  EXPECT_EQ(fetches_, 2);
}

TEST_F(StatusWatchTest, TheScreenIsRedrawn) {
  replies_ = {Status("training", 10), absl::UnavailableError("restarting"), Status("done", 100)};
  EXPECT_EQ(Watch(/*screen=*/true), 0);
  size_t clears = 0;
  for (size_t at = out_.find("\x1b[H\x1b[2J"); at != std::string::npos;
       at = out_.find("\x1b[H\x1b[2J", at + 1)) {
    ++clears;
  }
  EXPECT_EQ(clears, 3u);
  EXPECT_TRUE(absl::StrContains(out_, "scheduler unreachable, retrying (restarting)")) << out_;
  EXPECT_TRUE(absl::StrContains(out_, "last status, 1s ago:")) << out_;
}

TEST_F(StatusWatchTest, AStopEndsTheWatch) {
  absl::Notification stop;
  stop.Notify();
  StatusWatchOptions options;
  StatusWatchIo io;
  io.fetch = [] { return absl::StatusOr<std::string>(absl::UnavailableError("down")); };
  io.write = [this](const std::string& text) { out_ += text; };
  io.clock = &clock_;
  io.stop = &stop;
  EXPECT_EQ(WatchStatus(options, io), 0);
}

}  // namespace
}  // namespace towerps::scheduler
