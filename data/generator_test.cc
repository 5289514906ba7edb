// The generator: deterministic for a seed, exact sizes, recoverable planted structure.
#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "common/file_util.h"
#include "data/generator.h"
#include "data/test_util.h"
#include "data/text_io.h"
#include "gtest/gtest.h"

namespace towerps::data {
namespace {

using testing::TempDir;

struct Row {
  int64_t user, item, ts;
  bool click;
  std::string country, item_country;
};

std::vector<Row> ReadRows(const std::string& path) {
  std::vector<Row> rows;
  std::vector<absl::string_view> f;
  absl::Status s = ForEachLine(path, [&](absl::string_view line, int64_t n) {
    if (n == 1) return absl::OkStatus();
    SplitFields(line, ",", &f);
    EXPECT_EQ(f.size(), 13u);
    Row r;
    EXPECT_TRUE(absl::SimpleAtoi(f[0].substr(1), &r.user));
    EXPECT_TRUE(absl::SimpleAtoi(f[1].substr(1), &r.item));
    EXPECT_TRUE(absl::SimpleAtoi(f[2], &r.ts));
    r.click = f[3] == "1";
    r.country = std::string(f[5]);
    r.item_country = std::string(f[9]);
    rows.push_back(r);
    return absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
  return rows;
}

GenerateOptions Options(const std::string& dir) {
  GenerateOptions g;
  g.output_dir = dir;
  g.users = 400;
  g.items = 500;
  g.interactions = 20000;
  g.clusters = 10;
  g.content_dim = 3;
  return g;
}

TEST(GeneratorTest, DeterministicForASeedWithExactSizes) {
  TempDir dir;
  GenerateOptions a = Options(dir.Sub("a")), b = Options(dir.Sub("b")), c = Options(dir.Sub("c"));
  c.seed = 2;
  absl::StatusOr<GenerateResult> ra = Generate(a);
  ASSERT_TRUE(ra.ok()) << ra.status();
  ASSERT_TRUE(Generate(b).ok());
  ASSERT_TRUE(Generate(c).ok());
  for (const char* f : {"interactions.csv", "item_vectors.csv", "towerps.spec"}) {
    EXPECT_EQ(*ReadFileToString(dir.Sub("a/") + f), *ReadFileToString(dir.Sub("b/") + f)) << f;
  }
  EXPECT_NE(*ReadFileToString(dir.Sub("a/interactions.csv")),
            *ReadFileToString(dir.Sub("c/interactions.csv")));
  std::vector<Row> rows = ReadRows(dir.Sub("a/interactions.csv"));
  EXPECT_EQ(static_cast<int64_t>(rows.size()), a.interactions);
  EXPECT_EQ(ra->interactions, a.interactions);
  int64_t clicks = std::count_if(rows.begin(), rows.end(), [](const Row& r) { return r.click; });
  EXPECT_EQ(clicks, ra->positives);
  EXPECT_NEAR(static_cast<double>(clicks) / rows.size(), 0.9, 0.02);
  // Per user, timestamps never decrease and stay in the span.
  for (size_t k = 1; k < rows.size(); ++k) {
    if (rows[k].user == rows[k - 1].user) {
      ASSERT_GE(rows[k].ts, rows[k - 1].ts);
    }
    ASSERT_GE(rows[k].ts, a.start_time);
    ASSERT_LT(rows[k].ts, a.start_time + a.time_span_seconds);
  }
}

TEST(GeneratorTest, PlantedStructureIsRecoverable) {
  TempDir dir;
  GenerateOptions o = Options(dir.path());
  ASSERT_TRUE(Generate(o).ok());
  std::vector<Row> rows = ReadRows(dir.Sub("interactions.csv"));
  PlantedTruth truth(o);
  // Clusters: two clicks of the same user share a cluster far above chance.
  std::vector<double> cluster_share(o.clusters);
  std::map<int64_t, std::vector<int>> clusters_of_user;
  int64_t clicks = 0, same_country = 0, popular = 0;
  std::vector<int64_t> item_clicks(o.items);
  for (const Row& r : rows) {
    if (!r.click) continue;
    ++clicks;
    const int c = truth.ItemCluster(r.item);
    cluster_share[c] += 1;
    clusters_of_user[r.user].push_back(c);
    same_country += r.country == r.item_country;
    ++item_clicks[r.item];
  }
  double chance = 0;
  for (double& s : cluster_share) chance += (s / clicks) * (s / clicks);
  double same = 0, pairs = 0;
  for (const auto& [user, cs] : clusters_of_user) {
    std::vector<int> count(o.clusters);
    for (int c : cs) ++count[c];
    for (int k : count) same += static_cast<double>(k) * (k - 1);
    pairs += static_cast<double>(cs.size()) * (cs.size() - 1);
  }
  const double co_occurrence = same / pairs;
  EXPECT_GT(co_occurrence, 3 * chance) << co_occurrence << " vs chance " << chance;
  // The user's primary cluster is their most clicked one for most users.
  int primary_top = 0;
  for (const auto& [user, cs] : clusters_of_user) {
    std::vector<int> count(o.clusters);
    for (int c : cs) ++count[c];
    const int top = static_cast<int>(std::max_element(count.begin(), count.end()) - count.begin());
    primary_top += top == truth.UserCluster(user, 0);
  }
  EXPECT_GT(primary_top, 0.6 * clusters_of_user.size());
  // Countries: user and item country agree far above the 1/12 of chance.
  EXPECT_GT(static_cast<double>(same_country) / clicks, 0.3);
  // Power law: the top 5% of items take far more than 5% of the clicks.
  std::sort(item_clicks.rbegin(), item_clicks.rend());
  for (int k = 0; k < o.items / 20; ++k) popular += item_clicks[k];
  EXPECT_GT(static_cast<double>(popular) / clicks, 0.25);
}

TEST(GeneratorTest, ValidatesOptions) {
  GenerateOptions o;
  EXPECT_FALSE(o.Validate().ok());  // no output_dir
  o.output_dir = "/tmp/x";
  EXPECT_TRUE(o.Validate().ok());
  o.clusters = 1;
  EXPECT_FALSE(o.Validate().ok());
  o.clusters = 20;
  o.negative_fraction = 1;
  EXPECT_FALSE(o.Validate().ok());
}

}  // namespace
}  // namespace towerps::data
