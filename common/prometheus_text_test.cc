#include "common/prometheus_text.h"

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace towerps {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// One parsed sample line: name{labels} value.
struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// A strict reader of the text format 0.0.4 for what RenderPrometheusText emits:
// every sample belongs to a family announced by "# HELP" then "# TYPE" lines, names
// and label names are valid, label values are quoted with \\, \" and \n escapes.
// Adds a test failure and returns false on the first malformed line.
bool ParseExposition(const std::string& text, std::vector<Sample>* samples,
                     std::map<std::string, std::string>* types) {
  auto valid_name = [](absl::string_view n) {
    if (n.empty() || (n[0] >= '0' && n[0] <= '9')) return false;
    for (char c : n) {
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '_' || c == ':')) {
        return false;
      }
    }
    return true;
  };
  if (text.empty() || text.back() != '\n') {
    ADD_FAILURE() << "exposition must end in a newline";
    return false;
  }
  std::string last_help;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (absl::StartsWith(line, "# HELP ")) {
      std::vector<absl::string_view> parts =
          absl::StrSplit(line.substr(7), absl::MaxSplits(' ', 1));
      if (!valid_name(parts[0])) return (ADD_FAILURE() << line, false);
      last_help = std::string(parts[0]);
      continue;
    }
    if (absl::StartsWith(line, "# TYPE ")) {
      std::vector<std::string> parts = absl::StrSplit(line.substr(7), ' ');
      if (parts.size() != 2 || parts[0] != last_help || types->contains(parts[0])) {
        return (ADD_FAILURE() << "TYPE without HELP or repeated: " << line, false);
      }
      (*types)[parts[0]] = parts[1];
      continue;
    }
    Sample s;
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    s.name = std::string(line.substr(0, i));
    if (!valid_name(s.name)) return (ADD_FAILURE() << "bad name: " << line, false);
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        size_t eq = line.find('=', i);
        if (eq == absl::string_view::npos || eq + 1 >= line.size() || line[eq + 1] != '"') {
          return (ADD_FAILURE() << "bad label: " << line, false);
        }
        std::string key(line.substr(i, eq - i));
        if (!valid_name(key)) return (ADD_FAILURE() << "bad label name: " << line, false);
        std::string value;
        size_t j = eq + 2;
        for (; j < line.size() && line[j] != '"'; ++j) {
          if (line[j] == '\\') {
            if (++j >= line.size()) return (ADD_FAILURE() << line, false);
            char c = line[j];
            if (c == 'n') {
              value.push_back('\n');
            } else if (c == '\\' || c == '"') {
              value.push_back(c);
            } else {
              return (ADD_FAILURE() << "bad escape: " << line, false);
            }
          } else {
            value.push_back(line[j]);
          }
        }
        if (j >= line.size()) return (ADD_FAILURE() << "unterminated value: " << line, false);
        s.labels[key] = value;
        i = j + 1;
        if (i < line.size() && line[i] == ',') ++i;
      }
      ++i;  // '}'
    }
    if (i >= line.size() || line[i] != ' ') return (ADD_FAILURE() << "no value: " << line, false);
    std::string value(line.substr(i + 1));
    if (value == "+Inf") {
      s.value = INFINITY;
    } else if (!absl::SimpleAtod(value, &s.value)) {
      return (ADD_FAILURE() << "bad value: " << line, false);
    }
    // The sample's family: the name itself, or a histogram's name minus its suffix.
    std::string family = s.name;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      if (!types->contains(family) && absl::EndsWith(s.name, suffix)) {
        family = s.name.substr(0, s.name.size() - strlen(suffix));
      }
    }
    if (family != last_help || !types->contains(family)) {
      return (ADD_FAILURE() << "sample outside its family: " << line, false);
    }
    samples->push_back(std::move(s));
  }
  return true;
}

const Sample* Find(const std::vector<Sample>& samples, absl::string_view name,
                   const std::map<std::string, std::string>& extra = {}) {
  for (const Sample& s : samples) {
    if (s.name != name) continue;
    bool match = true;
    for (const auto& [k, v] : extra) match = match && s.labels.contains(k) && s.labels.at(k) == v;
    if (match) return &s;
  }
  return nullptr;
}

TEST(PrometheusTextTest, CounterGetsTotalAndLabels) {
  MetricsRegistry registry;
  registry.GetCounter("towerps_ps_pulled_keys_total")->Increment(42);
  registry.GetCounter("towerps_test_things")->Increment(3);
  std::string text = RenderPrometheusText(&registry, {"ps", 2});
  std::vector<Sample> samples;
  std::map<std::string, std::string> types;
  ASSERT_TRUE(ParseExposition(text, &samples, &types)) << text;
  EXPECT_EQ(types["towerps_ps_pulled_keys_total"], "counter");
  EXPECT_EQ(types["towerps_test_things_total"], "counter");
  const Sample* s = Find(samples, "towerps_ps_pulled_keys_total");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->value, 42);
  EXPECT_EQ(s->labels.at("role"), "ps");
  EXPECT_EQ(s->labels.at("rank"), "2");
  EXPECT_THAT(text, HasSubstr("# HELP towerps_ps_pulled_keys_total "));
}

TEST(PrometheusTextTest, GaugeValueAndMillisecondsToSeconds) {
  MetricsRegistry registry;
  registry.GetGauge("towerps_worker_loss")->Set(0.6931);
  registry.GetGauge("towerps_test_wait_ms")->Set(250);
  std::vector<Sample> samples;
  std::map<std::string, std::string> types;
  ASSERT_TRUE(ParseExposition(RenderPrometheusText(&registry, {"worker", 0}), &samples, &types));
  EXPECT_EQ(types["towerps_worker_loss"], "gauge");
  EXPECT_DOUBLE_EQ(Find(samples, "towerps_worker_loss")->value, 0.6931);
  ASSERT_NE(Find(samples, "towerps_test_wait_seconds"), nullptr);
  EXPECT_DOUBLE_EQ(Find(samples, "towerps_test_wait_seconds")->value, 0.25);
}

TEST(PrometheusTextTest, HistogramBucketsSumCountInSeconds) {
  MetricsRegistry registry;
  Histogram* h = registry.GetHistogram("towerps_worker_pull_latency_us");
  h->Record(1024);  // exactly 2^10 us: counted in le = 2^10 us
  h->Record(1025);
  h->Record(3000);
  h->TakeSnapshot(/*reset=*/true);  // the JSON writer's reset must not show here
  h->Record(100);
  std::string text = RenderPrometheusText(&registry, {"worker", 1});
  std::vector<Sample> samples;
  std::map<std::string, std::string> types;
  ASSERT_TRUE(ParseExposition(text, &samples, &types)) << text;
  EXPECT_EQ(types["towerps_worker_pull_latency_seconds"], "histogram");
  EXPECT_EQ(Find(samples, "towerps_worker_pull_latency_seconds_count")->value, 4);
  EXPECT_NEAR(Find(samples, "towerps_worker_pull_latency_seconds_sum")->value, 5149e-6, 1e-12);
  auto bucket = [&](double le_us) {
    const Sample* s = Find(samples, "towerps_worker_pull_latency_seconds_bucket",
                           {{"le", FormatPrometheusValue(le_us * 1e-6)}});
    return s == nullptr ? -1.0 : s->value;
  };
  EXPECT_EQ(bucket(0.25), -1);  // no bound below 1 us
  EXPECT_EQ(bucket(1), 0);
  EXPECT_EQ(bucket(64), 0);
  EXPECT_EQ(bucket(256), 1);
  EXPECT_EQ(bucket(1024), 2);
  EXPECT_EQ(bucket(4096), 4);
  EXPECT_EQ(Find(samples, "towerps_worker_pull_latency_seconds_bucket", {{"le", "+Inf"}})->value,
            4);
  // Buckets are cumulative and end at the count.
  double previous = 0;
  int buckets = 0;
  for (const Sample& s : samples) {
    if (s.name != "towerps_worker_pull_latency_seconds_bucket") continue;
    EXPECT_GE(s.value, previous);
    previous = s.value;
    ++buckets;
  }
  EXPECT_EQ(buckets, 17);
}

TEST(PrometheusTextTest, TableBecomesALabel) {
  MetricsRegistry registry;
  registry.GetGauge("towerps_sparse_emb_item_id_rows")->Set(10);
  registry.GetGauge("towerps_sparse_emb_user_rows")->Set(20);
  registry.GetCounter("towerps_sparse_emb_item_id_admitted_total")->Increment(7);
  std::string text = RenderPrometheusText(&registry, {"ps", 0});
  std::vector<Sample> samples;
  std::map<std::string, std::string> types;
  ASSERT_TRUE(ParseExposition(text, &samples, &types)) << text;
  EXPECT_EQ(Find(samples, "towerps_sparse_emb_rows", {{"table", "item_id"}})->value, 10);
  EXPECT_EQ(Find(samples, "towerps_sparse_emb_rows", {{"table", "user"}})->value, 20);
  EXPECT_EQ(Find(samples, "towerps_sparse_emb_admitted_total", {{"table", "item_id"}})->value, 7);
  EXPECT_THAT(text, Not(HasSubstr("item_id_rows")));
}

TEST(PrometheusTextTest, LabelValuesAndNamesEscaped) {
  EXPECT_EQ(EscapePrometheusLabelValue("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  MetricsRegistry registry;
  registry.GetGauge("towerps_sparse_emb_we\"ird\\t\nable_rows")->Set(1);
  registry.GetGauge("towerps-odd.name")->Set(2);
  registry.GetGauge("towerps_new\nline\\name")->Set(3);  // escaped in its HELP line
  std::string text = RenderPrometheusText(&registry, {"ro\"le", 0});
  std::vector<Sample> samples;
  std::map<std::string, std::string> types;
  ASSERT_TRUE(ParseExposition(text, &samples, &types)) << text;
  const Sample* s = Find(samples, "towerps_sparse_emb_rows");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->labels.at("table"), "we\"ird\\t\nable");
  EXPECT_EQ(s->labels.at("role"), "ro\"le");
  EXPECT_NE(Find(samples, "towerps_odd_name"), nullptr);
  EXPECT_NE(Find(samples, "towerps_new_line_name"), nullptr);
  EXPECT_THAT(text, HasSubstr("towerps gauge towerps_new\\nline\\\\name\n"));
}

TEST(PrometheusTextTest, SpecialValues) {
  EXPECT_EQ(FormatPrometheusValue(INFINITY), "+Inf");
  EXPECT_EQ(FormatPrometheusValue(-INFINITY), "-Inf");
  EXPECT_EQ(FormatPrometheusValue(NAN), "NaN");
  EXPECT_EQ(FormatPrometheusValue(0.25), "0.25");
  EXPECT_EQ(FormatPrometheusValue(3), "3");
}

TEST(HistogramTest, PowerOfTwoIsAnInclusiveUpperEdge) {
  for (int e : {-10, 0, 10, 30}) {
    Histogram h;
    h.Record(std::ldexp(1.0, e));
    Histogram::Totals t = h.TakeTotals();
    int bucket = 0;
    while (t.buckets[bucket] == 0) ++bucket;
    EXPECT_EQ(Histogram::BucketUpperBound(bucket), std::ldexp(1.0, e)) << e;
  }
}

}  // namespace
}  // namespace towerps
