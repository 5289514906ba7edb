#include "sparse_emb/table_config.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace towerps::sparse_emb {
namespace {

using ::testing::HasSubstr;

TEST(TableConfigTest, DefaultsAreValid) { EXPECT_TRUE(TableConfig().Validate().ok()); }

TEST(TableConfigTest, RejectsBadFieldsWithClearMessages) {
  struct Case {
    void (*mutate)(TableConfig*);
    const char* message;
  };
  const Case cases[] = {
      {[](TableConfig* c) { c->dim = 3; }, "dim must be in 4..1024"},
      {[](TableConfig* c) { c->dim = 1025; }, "dim must be in 4..1024"},
      {[](TableConfig* c) { c->name = ""; }, "name must have 1..64 characters"},
      {[](TableConfig* c) { c->name = "a-b"; }, "name may hold only"},
      {[](TableConfig* c) { c->initializer.scale = 0; }, "initializer scale"},
      {[](TableConfig* c) { c->optimizer.beta1 = 1.0f; }, "beta1"},
      {[](TableConfig* c) {
         c->optimizer.kind = OptimizerKind::kAdam;
         c->optimizer.adam_mode = AdamMode::kCatchUp;
         c->optimizer.beta1 = 0.99f;
         c->optimizer.beta2 = 0.9f;
       },
       "adam_mode=catchup needs beta1^2 < beta2"},
      {[](TableConfig* c) { c->optimizer.clip_norm = -1; }, "clip_norm"},
      {[](TableConfig* c) { c->optimizer.weight_decay = -1; }, "weight_decay"},
      {[](TableConfig* c) { c->admission.min_count = 256; }, "min_count"},
      {[](TableConfig* c) { c->num_stripes = 3; }, "power of two"},
      {[](TableConfig* c) { c->eviction.max_rows = 4; }, "max_rows"},
      {[](TableConfig* c) { c->eviction.ttl_steps = -1; }, "ttl_steps"},
  };
  for (const Case& c : cases) {
    TableConfig config;
    config.name = "t";
    c.mutate(&config);
    absl::Status s = config.Validate();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.message));
  }
}

TEST(TableConfigTest, ParsesCompactForm) {
  auto config = ParseTableConfig(
      "name=item_id dim=32 dtype=bf16 init=normal:0.02 seed=7, optimizer=adam beta2=0.99 "
      "wd=0.001 clip=1.5 admit=3 ttl=1000 max_rows=5000 stripes=4");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->name, "item_id");
  EXPECT_EQ(config->dim, 32);
  EXPECT_EQ(config->dtype, DType::kBf16);
  EXPECT_EQ(config->initializer.kind, InitKind::kTruncatedNormal);
  EXPECT_FLOAT_EQ(config->initializer.scale, 0.02f);
  EXPECT_EQ(config->initializer.seed, 7u);
  EXPECT_EQ(config->optimizer.kind, OptimizerKind::kAdam);
  EXPECT_FLOAT_EQ(config->optimizer.beta2, 0.99f);
  EXPECT_FLOAT_EQ(config->optimizer.clip_norm, 1.5f);
  EXPECT_EQ(config->admission.min_count, 3);
  EXPECT_EQ(config->eviction.ttl_steps, 1000);
  EXPECT_EQ(config->eviction.max_rows, 5000);
  EXPECT_EQ(config->num_stripes, 4);

  // ToString and Parse are inverses.
  auto again = ParseTableConfig(TableConfigToString(*config));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(TableConfigToString(*again), TableConfigToString(*config));
}

TEST(TableConfigTest, ParseErrors) {
  EXPECT_THAT(std::string(ParseTableConfig("dim=64 colour=red").status().message()),
              HasSubstr("unknown table config key 'colour'"));
  EXPECT_THAT(std::string(ParseTableConfig("dim=abc").status().message()),
              HasSubstr("bad number for dim"));
  EXPECT_THAT(std::string(ParseTableConfig("optimizer=lion").status().message()),
              HasSubstr("unknown optimizer"));
  EXPECT_THAT(std::string(ParseTableConfig("dim").status().message()),
              HasSubstr("expected key=value"));
  EXPECT_EQ(ParseTableConfig("dim=2").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(ParseTableConfig("optimizer=adam adam_mode=eager").status().message()),
              HasSubstr("adam_mode must be lazy|catchup"));
}

// Lazy Adam (the default) keeps the row layout and fingerprint Adam tables had before
// catch-up existed, so their snapshots still load; catch-up rows are another layout.
TEST(TableConfigTest, AdamModeParsesAndSeparatesFingerprints) {
  auto catchup = ParseTableConfig("name=t optimizer=adam adam_mode=catchup");
  auto lazy = ParseTableConfig("name=t optimizer=adam");
  ASSERT_TRUE(catchup.ok() && lazy.ok());
  EXPECT_EQ(catchup->optimizer.adam_mode, AdamMode::kCatchUp);
  EXPECT_EQ(lazy->optimizer.adam_mode, AdamMode::kLazy);
  EXPECT_NE(TableFingerprint(*catchup), TableFingerprint(*lazy));
  EXPECT_EQ(ParseTableConfig(TableConfigToString(*catchup))->optimizer.adam_mode,
            AdamMode::kCatchUp);
  // Other optimizers ignore the mode: same fingerprint whatever it says.
  auto adagrad = ParseTableConfig("name=t optimizer=adagrad adam_mode=lazy");
  ASSERT_TRUE(adagrad.ok());
  EXPECT_EQ(TableFingerprint(*adagrad),
            TableFingerprint(*ParseTableConfig("name=t optimizer=adagrad")));
}

}  // namespace
}  // namespace towerps::sparse_emb
