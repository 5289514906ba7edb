#include "dashboard/events_reader.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/test_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace towerps::dashboard {
namespace {

using ::testing::HasSubstr;

class EventsReaderTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& text) {
    std::string dir = FreshTestDir("events_reader", true);
    std::string path = dir + "/" + name;
    EXPECT_TRUE(WriteFileAtomically(path, text).ok());
    return path;
  }
  ProblemLog problems_{20};
};

TEST_F(EventsReaderTest, JobCheckpointsAndMarks) {
  std::string path = Write(
      "events.jsonl",
      "{\"ts_ms\":1000,\"event\":\"job_start\",\"job_id\":\"j1\",\"config\":\"a.conf\","
      "\"dataset\":\"ds\",\"servers\":2,\"workers\":3,\"planned_steps\":500,\"staleness\":2,"
      "\"partitions\":6,\"recovered\":false,\"start_step\":0,\"future_key\":[1]}\n"
      "{\"ts_ms\":1100,\"event\":\"phase\",\"phase\":\"training\",\"reason\":\"\"}\n"
      "{\"ts_ms\":1200,\"event\":\"node_registered\",\"role\":\"worker\",\"rank\":1,"
      "\"endpoint\":\"\",\"replaced\":true}\n"
      "{\"ts_ms\":1300,\"event\":\"node_dead\",\"role\":\"ps\",\"rank\":0,\"reason\":\"heartbeat "
      "timeout\"}\n"
      "{\"ts_ms\":1400,\"event\":\"checkpoint\",\"step\":40,\"dir\":\"run/checkpoint/x\","
      "\"bytes\":12345,\"duration_ms\":12.5,\"incremental\":true,\"ok\":true,\"error\":\"\"}\n"
      "{\"ts_ms\":1450,\"event\":\"a_future_event\",\"x\":1}\n"
      "{\"ts_ms\":1500,\"event\":\"recovery\",\"rank\":0,\"lost_steps\":3,\"seconds\":1.5,\"ok\":"
      "true}\n"
      "{\"ts_ms\":2000,\"event\":\"job_end\",\"phase\":\"done\",\"reason\":\"\",\"global_step\":"
      "500,"
      "\"duration_ms\":1000}\n");
  EventsData e;
  ASSERT_TRUE(ReadEvents(path, ReadLimits(), &e, &problems_).ok());
  EXPECT_EQ(problems_.total(), 0) << (problems_.kept().empty() ? "" : problems_.kept()[0]);
  EXPECT_TRUE(e.present);
  EXPECT_EQ(e.job_id, "j1");
  EXPECT_EQ(e.workers, 3);
  EXPECT_EQ(e.planned_steps, 500);
  EXPECT_EQ(e.start_ms, 1000);
  EXPECT_EQ(e.end_ms, 2000);
  EXPECT_EQ(e.phase, "done");
  EXPECT_EQ(e.final_step, 500);
  ASSERT_EQ(e.checkpoints.size(), 1u);
  EXPECT_EQ(e.checkpoints[0].bytes, 12345);
  EXPECT_EQ(e.checkpoints[0].duration_ms, 12.5);
  ASSERT_EQ(e.marks.size(), 4u);
  EXPECT_EQ(e.marks[0].kind, "replaced");
  EXPECT_EQ(e.marks[0].label, "worker 1 replaced");
  EXPECT_EQ(e.marks[1].label, "ps 0 dead: heartbeat timeout");
  EXPECT_EQ(e.marks[2].kind, "checkpoint");
  EXPECT_EQ(e.marks[3].kind, "recovery");
}

TEST_F(EventsReaderTest, BadLinesAndTypesAreReportedAndBounded) {
  std::string text =
      "{\"ts_ms\":1,\"event\":\"checkpoint\",\"step\":\"forty\"}\nnope\n{\"event\":\"x\"}\n";
  for (int i = 0; i < 50; ++i) {
    absl::StrAppend(&text, "{\"ts_ms\":", 10 + i, ",\"event\":\"checkpoint\",\"step\":", i, "}\n");
  }
  ReadLimits limits;
  limits.max_events = 10;
  EventsData e;
  ASSERT_TRUE(ReadEvents(Write("events.jsonl", text), limits, &e, &problems_).ok());
  ASSERT_EQ(problems_.total(), 3);
  EXPECT_THAT(problems_.kept()[0], HasSubstr("events.jsonl line 1: \"step\" has the wrong type"));
  EXPECT_THAT(problems_.kept()[1], HasSubstr("line 2: not a JSON object"));
  EXPECT_THAT(problems_.kept()[2], HasSubstr("line 3: no integer ts_ms"));
  EXPECT_EQ(e.checkpoints.size(), 10u);
  EXPECT_EQ(e.checkpoints.back().step, 49);
  EXPECT_GT(e.dropped, 0);
}

TEST_F(EventsReaderTest, MissingFilesAreAbsentNotErrors) {
  EventsData e;
  EvaluationsData v;
  std::string dir = FreshTestDir("events_absent");
  ASSERT_TRUE(ReadEvents(dir + "/events.jsonl", ReadLimits(), &e, &problems_).ok());
  ASSERT_TRUE(ReadEvaluations(dir + "/evaluations.jsonl", ReadLimits(), &v, &problems_).ok());
  EXPECT_FALSE(e.present);
  EXPECT_FALSE(v.present);
}

TEST_F(EventsReaderTest, EvaluationsWithHealth) {
  std::string hist_edges = "[0", hist_counts = "[1";
  for (int i = 1; i <= 20; ++i) absl::StrAppend(&hist_edges, ",", i * 0.1);
  for (int i = 1; i < 20; ++i) absl::StrAppend(&hist_counts, ",", i);
  std::string path = Write(
      "evaluations.jsonl",
      absl::StrCat("{\"ts_ms\":5000,\"checkpoint\":\"c\",\"step\":40,\"split\":\"test\",",
                   "\"recall@10\":0.2,\"ndcg@10\":0.1,\"popularity_recall@10\":0.05,",
                   "\"popularity_ndcg@10\":0.02,\"hit_rate@10\":0.3,\"items\":100,",
                   "\"embedding_health\":{\"items\":100,\"users\":50,\"item_coverage\":0.9,",
                   "\"item_id_rows\":90,\"item_id_norm_quantiles\":[0.1,0.2,0.3,0.4,0.5,0.6,0.7],",
                   "\"item_id_norm_histogram\":{\"edges\":", hist_edges, "],\"counts\":",
                   hist_counts, "]},\"user_id_rows\":null,\"user_id_norm_quantiles\":null,",
                   "\"item_mean_pairwise_cosine\":0.95,\"collapse_threshold\":0.9,",
                   "\"collapse_warning\":true,\"future_key\":[1]}}\n"));
  EvaluationsData v;
  ASSERT_TRUE(ReadEvaluations(path, ReadLimits(), &v, &problems_).ok());
  EXPECT_EQ(problems_.total(), 0) << (problems_.kept().empty() ? "" : problems_.kept()[0]);
  ASSERT_EQ(v.evaluations.size(), 1u);
  const Evaluation& e = v.evaluations[0];
  EXPECT_EQ(e.step, 40);
  EXPECT_EQ(e.metrics.size(), 4u) << "recall, ndcg and their popularity baselines";
  EXPECT_TRUE(e.has_health);
  EXPECT_TRUE(e.collapse_warning);
  EXPECT_EQ(e.item_coverage, 0.9);
  EXPECT_EQ(e.mean_cosine, 0.95);
  EXPECT_EQ(e.collapse_threshold, 0.9);
  EXPECT_EQ(e.item_id_rows, 90);
  EXPECT_EQ(e.item_id_norm_quantiles, (std::vector<double>{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7}));
  EXPECT_TRUE(e.user_id_norm_quantiles.empty()) << "null: the model has no user_id table";
  EXPECT_TRUE(e.item_norm_quantiles.empty()) << "absent: the item tower is L2-normalised";
  EXPECT_EQ(e.hist_counts.size(), 20u);
  EXPECT_EQ(e.hist_edges.size(), 21u);
}

// Tower-output norms (a tower that is not L2-normalised), a line without the
// threshold (unknown, -1), and hostile quantile lists.
TEST_F(EventsReaderTest, EvaluationsHealthVariantsAndBadQuantiles) {
  std::string path = Write(
      "evaluations.jsonl",
      absl::StrCat("{\"ts_ms\":1,\"step\":1,\"embedding_health\":{\"item_coverage\":null,",
                   "\"item_norm_quantiles\":[1,2,3,4,5,6,7],\"item_id_rows\":null,",
                   "\"item_id_norm_quantiles\":null,\"item_id_norm_histogram\":null,",
                   "\"item_mean_pairwise_cosine\":0.2,\"collapse_warning\":false}}\n",
                   "{\"ts_ms\":2,\"step\":2,\"embedding_health\":{",
                   "\"item_id_norm_quantiles\":[1,2,3],\"user_id_norm_quantiles\":\"x\"}}\n"));
  EvaluationsData v;
  ASSERT_TRUE(ReadEvaluations(path, ReadLimits(), &v, &problems_).ok());
  ASSERT_EQ(v.evaluations.size(), 2u);
  const Evaluation& a = v.evaluations[0];
  EXPECT_EQ(a.item_norm_quantiles.size(), 7u);
  EXPECT_TRUE(a.item_id_norm_quantiles.empty());
  EXPECT_TRUE(a.hist_counts.empty());
  EXPECT_EQ(a.item_id_rows, -1);
  EXPECT_EQ(a.collapse_threshold, -1);
  EXPECT_EQ(a.item_coverage, -1);
  const Evaluation& b = v.evaluations[1];
  EXPECT_TRUE(b.item_id_norm_quantiles.empty()) << "3 numbers are not quantiles";
  EXPECT_TRUE(b.user_id_norm_quantiles.empty());
  EXPECT_EQ(problems_.total(), 1) << "the second line is reported once";
}

}  // namespace
}  // namespace towerps::dashboard
