#include "worker/negative_miner.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "data/example_reader.h"
#include "gtest/gtest.h"
#include "worker/embedded_trainer.h"
#include "worker/loop_test_util.h"

namespace towerps::worker {
namespace {

// The guard: excluded rows never come back, the skip_top best of the rest are skipped,
// the next per_user follow in rank order (ties: lower row first).
TEST(SelectMinedTest, SkipsExcludedAndTopRanks) {
  //                          row: 0    1    2    3    4    5    6    7
  const std::vector<float> scores = {0.9, 0.1, 0.8, 0.7, 0.7, 0.95, 0.2, 0.3};
  std::vector<int64_t> scratch, out;
  // Order without exclusions: 5, 0, 2, 3, 4, 7, 6, 1. Excluding 0 and 3:
  // 5, 2, 4, 7, 6, 1; skip 2 -> 4, 7, 6.
  SelectMined(scores, std::vector<int64_t>{0, 3}, 2, 3, &scratch, &out);
  EXPECT_EQ(out, (std::vector<int64_t>{4, 7, 6}));
  out.clear();
  SelectMined(scores, {}, 0, 2, &scratch, &out);  // no guard: the two best
  EXPECT_EQ(out, (std::vector<int64_t>{5, 0}));
  out.clear();
  SelectMined(scores, {}, 2, 2, &scratch, &out);  // ties by row: 3 before 4
  EXPECT_EQ(out, (std::vector<int64_t>{2, 3}));
  out = {42};  // appends
  SelectMined(scores, std::vector<int64_t>{0, 1, 2, 3, 4, 5}, 1, 5, &scratch, &out);
  EXPECT_EQ(out, (std::vector<int64_t>{42, 6}));  // only 7, 6 are left; 7 is skipped
  out.clear();
  SelectMined(scores, {}, 8, 3, &scratch, &out);  // the guard takes everything
  EXPECT_TRUE(out.empty());
  // Both selection paths (a small buffer, or nth_element above 256 ranks) agree.
  std::vector<float> many(2000);
  for (size_t r = 0; r < many.size(); ++r) many[r] = static_cast<float>((r * 7919) % 1013);
  std::vector<int64_t> excluded = {3, 17, 500, 1999}, small, large;
  SelectMined(many, excluded, 10, 5, &scratch, &small);
  SelectMined(many, excluded, 300, 5, &scratch, &large);
  std::vector<int64_t> all;
  SelectMined(many, excluded, 0, 305, &scratch, &all);
  ASSERT_EQ(all.size(), 305u);
  EXPECT_EQ(small, std::vector<int64_t>(all.begin() + 10, all.begin() + 15));
  EXPECT_EQ(large, std::vector<int64_t>(all.begin() + 300, all.end()));
  for (int64_t row : all) EXPECT_FALSE(std::binary_search(excluded.begin(), excluded.end(), row));
}

TEST(UserPositivesTest, SortedDeduplicatedPerUser) {
  UserPositives p;
  p.Add(7, 3);
  p.Add(7, 1);
  p.Add(7, 3);
  p.Add(9, 0);
  p.Finish();
  EXPECT_EQ(std::vector<int64_t>(p.Of(7).begin(), p.Of(7).end()), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(p.Of(9).size(), 1u);
  EXPECT_TRUE(p.Of(8).empty());
  EXPECT_EQ(p.users(), 2);
}

// Every training positive, read independently of UserPositives.
absl::flat_hash_map<uint64_t, std::set<uint64_t>> TrainPositives(const std::string& dir) {
  absl::flat_hash_map<uint64_t, std::set<uint64_t>> out;
  data::ExampleReaderOptions o;
  o.dataset_dir = dir;
  auto reader = data::ExampleReader::Open(o);
  EXPECT_TRUE(reader.ok()) << reader.status();
  data::Example e;
  while (reader.ok() && *(*reader)->Next(&e)) out[e.user_id].insert(e.item_id);
  return out;
}

constexpr char kMine[] = "mine every=5 per_user=4 skip_top=3\n";

// Over every batch of a generated dataset's training split (with training between
// them, so the rankings move): each mined set excludes all of its user's training
// positives, has per_user items, and the extras reach the loss as the row's own.
TEST(NegativeMinerTest, MinedNegativesNeverIncludeTheUsersPositives) {
  Fixture f;
  auto config = ParseModelConfig(std::string(kConfig) + kMine);
  ASSERT_TRUE(config.ok()) << config.status();
  f.model = *BindModel(*config, f.model.schema);
  auto positives = UserPositives::Load(Dataset(), *f.catalog);
  ASSERT_TRUE(positives.ok()) << positives.status();
  auto runner = f.Runner(f.params.get());
  // Without a catalog there is nothing to mine from.
  auto bare = *StepRunner::Create(&f.model, nullptr, f.params.get(), 0);
  EXPECT_EQ(bare->EnableMining(positives->get()).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(runner->EnableMining(positives->get()).ok());
  // The same mining without the known positives: shows the check below can fail.
  UserPositives none;
  auto unguarded = *NegativeMiner::Create(&f.model, f.catalog.get(), &none);
  MinedNegatives raw;
  int64_t unguarded_hits = 0;

  const auto truth = TrainPositives(Dataset());
  const int per_user = config->mining.per_user;
  const int extra = config->extra_negatives;
  data::ExampleReaderOptions o;
  o.dataset_dir = Dataset();
  auto reader = *data::ExampleReader::Open(o);
  data::ExampleBatch batch(f.model.schema);
  data::Example e;
  PreparedBatch p(&f.model);
  p.batch = &batch;
  int64_t step = 0, checked = 0;
  bool more = true;
  while (more) {
    batch.Clear();
    while (batch.size() < 32 && (more = *reader->Next(&e))) batch.Add(e);
    if (batch.size() < 2) break;
    ASSERT_TRUE(runner->Prepare(&p, f.params.get(), step).ok());
    ASSERT_TRUE(unguarded->Mine(batch, step, f.params.get(), &raw).ok());
    for (size_t k = 0; k < raw.rows.size(); ++k) {
      unguarded_hits += truth.at(batch.user_ids[raw.owner[k]]).count(f.catalog->key(raw.rows[k]));
    }
    const size_t b = batch.size();
    ASSERT_EQ(p.mined.rows.size(), b * per_user);
    ASSERT_EQ(p.extra_ids.size(), extra + b * per_user);
    ASSERT_EQ(p.extra_owner.size(), p.extra_ids.size());
    for (size_t k = 0; k < p.mined.rows.size(); ++k) {
      const int32_t owner = p.mined.owner[k];
      ASSERT_GE(owner, 0);
      ASSERT_LT(owner, static_cast<int32_t>(b));
      const uint64_t item = f.catalog->key(p.mined.rows[k]);
      const auto& known = truth.at(batch.user_ids[owner]);
      EXPECT_EQ(known.count(item), 0u) << "user " << batch.user_ids[owner] << " item " << item;
      EXPECT_NE(item, batch.item_ids[owner]);
      // The prepared extras: uniform ones first (owner -1), then the mined in order.
      EXPECT_EQ(p.extra_ids[extra + k], item);
      EXPECT_EQ(p.extra_owner[extra + k], owner);
      ++checked;
    }
    // A user's mined items are distinct.
    for (size_t i = 0; i < b; ++i) {
      std::set<int64_t> rows(p.mined.rows.begin() + i * per_user,
                             p.mined.rows.begin() + (i + 1) * per_user);
      EXPECT_EQ(rows.size(), static_cast<size_t>(per_user));
    }
    auto stats = runner->Run(&p, step, 1.0f);
    ASSERT_TRUE(stats.ok()) << stats.status();
    EXPECT_TRUE(std::isfinite(stats->loss));
    ++step;
  }
  EXPECT_GT(checked, 1000);
  EXPECT_GT(unguarded_hits, 0);  // training positives rank high: the guard has work to do
  RecordProperty("unguarded_hits", std::to_string(unguarded_hits));
  RecordProperty("mined_checked", std::to_string(checked));
}

// The catalog is re-embedded every `every` steps, and again after a rollback.
TEST(NegativeMinerTest, RefreshesEveryNSteps) {
  Fixture f;
  auto config = ParseModelConfig(std::string(kConfig) + kMine);
  ASSERT_TRUE(config.ok());
  f.model = *BindModel(*config, f.model.schema);
  auto positives = *UserPositives::Load(Dataset(), *f.catalog);
  auto runner = f.Runner(f.params.get());
  auto miner = NegativeMiner::Create(&f.model, f.catalog.get(), positives.get());
  ASSERT_TRUE(miner.ok()) << miner.status();
  data::ExampleReaderOptions o;
  o.dataset_dir = Dataset();
  auto reader = *data::ExampleReader::Open(o);
  data::ExampleBatch batch(f.model.schema);
  data::Example e;
  while (batch.size() < 8 && *reader->Next(&e)) batch.Add(e);
  MinedNegatives mined;
  for (int64_t step = 0; step < 12; ++step) {
    ASSERT_TRUE((*miner)->Mine(batch, step, f.params.get(), &mined).ok());
  }
  EXPECT_EQ((*miner)->refreshes(), 3);  // steps 0, 5, 10
  ASSERT_TRUE((*miner)->Mine(batch, 2, f.params.get(), &mined).ok());
  EXPECT_EQ((*miner)->refreshes(), 4);
  // Mining off in the config: no miner.
  Fixture off;
  EXPECT_FALSE(NegativeMiner::Create(&off.model, off.catalog.get(), positives.get()).ok());
}

// Embedded training with the mine line, two threads (each its own miner).
TEST(NegativeMinerTest, EmbeddedTrainingMines) {
  auto config = ParseModelConfig(std::string(kConfig) + kMine);
  ASSERT_TRUE(config.ok());
  EmbeddedTrainerOptions options;
  options.dataset_dir = Dataset();
  options.run_dir = FreshTestDir("mine_train");
  options.threads = 2;
  auto trainer = EmbeddedTrainer::Create(options, *config, nullptr);
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  auto result = (*trainer)->Run();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_GT(result->steps, 0);
}

}  // namespace
}  // namespace towerps::worker
