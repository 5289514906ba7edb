// prepare on the real MovieTweetings 100K snapshot (skipped when the data is absent):
// counts match the dataset's README.
#include <cstdlib>
#include <string>

#include "common/file_util.h"
#include "data/example_reader.h"
#include "data/prepare.h"
#include "data/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace towerps::data {
namespace {

std::string DataDir() {
  const char* shared = std::getenv("TOWERPS_SHARED_DATA");
  return std::string(shared != nullptr ? shared : "../shared/data") + "/movietweetings-100k";
}

TEST(MovieTweetingsTest, PrepareCountsMatchTheReadme) {
  const std::string input = DataDir();
  if (!PathExists(input + "/ratings.dat")) {
    GTEST_SKIP() << input << " is absent (set TOWERPS_SHARED_DATA); skipping the real-data test";
  }
  testing::TempDir dir;
  PrepareOptions p;
  p.source.input = input;
  p.output_dir = dir.Sub("ds");
  p.min_rating = 7;
  absl::StatusOr<PrepareResult> r = Prepare(p);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->format, "movietweetings");
  EXPECT_EQ(r->interaction_lines, 100000);
  EXPECT_EQ(r->side_lines, 10506 + 16554);
  EXPECT_EQ(r->skipped_lines, 0);
  EXPECT_EQ(r->interactions, 100000);
  EXPECT_EQ(r->not_positive, 100000 - 72771);  // README: 72,771 ratings are >= 7
  EXPECT_EQ(r->examples[0] + r->examples[1] + r->examples[2], 72771u);
  EXPECT_EQ(r->users, 15213u);
  EXPECT_EQ(r->items, 8259u);
  absl::StatusOr<DatasetMeta> meta = LoadDatasetMeta(dir.Sub("ds"));
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ(meta->schema.item.sparse[meta->schema.item.SparseSlot("genres")].vocab_size, 25u);
  EXPECT_EQ(testing::ReadSplit(dir.Sub("ds"), "test").size(), r->examples[2]);

  // All ratings but the 12 zeros are positives; a 5-core keeps users with >= 5.
  p.output_dir = dir.Sub("all");
  p.min_rating = 0;
  p.min_user_interactions = 5;
  r = Prepare(p);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->not_positive, 12);
  EXPECT_LE(r->users, 4692u);  // README: 4,692 users have >= 5 ratings
  EXPECT_GT(r->users, 4000u);
}

}  // namespace
}  // namespace towerps::data
