#include "common/event_log.h"

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_split.h"
#include "common/file_util.h"
#include "common/test_dir.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace towerps {
namespace {

std::vector<nlohmann::json> ReadLines(const std::string& path) {
  std::vector<nlohmann::json> out;
  absl::StatusOr<std::string> text = ReadFileToString(path);
  EXPECT_TRUE(text.ok()) << text.status();
  if (!text.ok()) return out;
  EXPECT_TRUE(text->empty() || text->back() == '\n') << "the last line is not terminated";
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(j.is_discarded()) << line;
    out.push_back(std::move(j));
  }
  return out;
}

TEST(EventLogTest, OptionsValidate) {
  EXPECT_EQ(EventLogOptions().Validate().code(), absl::StatusCode::kInvalidArgument);
  FakeClock clock;
  EXPECT_EQ(EventLog::Create({}, &clock).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EventLog::Create({"/nonexistent-dir/events.jsonl"}, &clock).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(EventLogTest, AppendsTimestampedLinesAndKeepsWhatWasThere) {
  const std::string dir = FreshTestDir("event_log", /*create=*/true);
  const std::string path = dir + "/events.jsonl";
  ASSERT_TRUE(WriteFileAtomically(path, "{\"event\":\"earlier\"}\n").ok());
  FakeClock clock(7'000'000);  // 7000 ms
  auto log = EventLog::Create({path}, &clock);
  ASSERT_TRUE(log.ok()) << log.status();
  JsonObject fields;
  fields.Add("role", "ps").Add("rank", 2).Add("replaced", true);
  ASSERT_TRUE((*log)->Append("node_registered", fields).ok());
  clock.AdvanceMicros(1'500'000);
  ASSERT_TRUE((*log)->Append("phase").ok());
  std::vector<nlohmann::json> lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["event"], "earlier");
  EXPECT_EQ(lines[1]["ts_ms"], 7000);
  EXPECT_EQ(lines[1]["event"], "node_registered");
  EXPECT_EQ(lines[1]["role"], "ps");
  EXPECT_EQ(lines[1]["rank"], 2);
  EXPECT_EQ(lines[1]["replaced"], true);
  EXPECT_EQ(lines[2]["ts_ms"], 8500);
  EXPECT_EQ(lines[2]["event"], "phase");
  EXPECT_EQ(lines[2].size(), 2u);
  EXPECT_EQ((*log)->write_errors(), 0);
}

// Lines appended from several threads are whole and in ts_ms order.
TEST(EventLogTest, ConcurrentAppendsAreWholeLines) {
  const std::string dir = FreshTestDir("event_log_mt", /*create=*/true);
  const std::string path = dir + "/events.jsonl";
  RealClock clock;
  auto log = EventLog::Create({path}, &clock);
  ASSERT_TRUE(log.ok()) << log.status();
  constexpr int kThreads = 4, kEach = 250;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        JsonObject fields;
        fields.Add("thread", t).Add("i", i).Add("pad", std::string(200, 'x'));
        EXPECT_TRUE((*log)->Append("tick", fields).ok());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::vector<nlohmann::json> lines = ReadLines(path);
  ASSERT_EQ(lines.size(), static_cast<size_t>(kThreads * kEach));
  std::vector<int> next(kThreads, 0);
  int64_t last_ts = 0;
  for (const nlohmann::json& line : lines) {
    ASSERT_TRUE(line["thread"].is_number_integer());
    const int t = line["thread"];
    EXPECT_EQ(line["i"], next[t]++) << "thread " << t << "'s lines out of order";
    EXPECT_GE(line["ts_ms"].get<int64_t>(), last_ts);
    last_ts = line["ts_ms"];
  }
}

// A full disk: the append fails with ResourceExhausted, is counted, and the log
// goes on being usable.
TEST(EventLogTest, WriteErrorsAreReturnedAndCounted) {
  FakeClock clock;
  auto log = EventLog::Create({"/dev/full"}, &clock);
  if (!log.ok()) GTEST_SKIP() << "no /dev/full here: " << log.status();
  EXPECT_EQ((*log)->Append("job_start").code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ((*log)->Append("job_end").code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ((*log)->write_errors(), 2);
}

}  // namespace
}  // namespace towerps
