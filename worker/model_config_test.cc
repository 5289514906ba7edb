#include "worker/model_config.h"

#include "gtest/gtest.h"

namespace towerps::worker {
namespace {

constexpr char kConfig[] = R"(
# comment
table item_id dim=16 optimizer=rowwise_adagrad lr=0.1
table attr dim=8 optimizer=sgd
feature user history table=item_id pooling=mean
feature item item_id table=item_id
feature item genres table=attr pooling=sum
dense user off
tower user mlp=32,16 cross=1 out=8 activation=silu
tower item mlp= cross=0 out=8
loss kind=bce temperature=0.2 logq=off extra_negatives=4
dense_optimizer kind=sgd lr=0.01 momentum=0.5
schedule warmup=3 min_lr_ratio=0.1
train batch=16 epochs=2 seed=9 dense_sync_every=2
)";

data::FeatureSpec Feature(const char* name, data::FeatureKind kind, int dim = 1) {
  data::FeatureSpec f;
  f.name = name;
  f.kind = kind;
  f.dim = dim;
  return f;
}

data::DatasetSchema Schema() {
  data::DatasetSchema s;
  s.user.sparse = {Feature("user_id", data::FeatureKind::kSingle),
                   Feature("history", data::FeatureKind::kMulti)};
  s.user.dense = {Feature("age", data::FeatureKind::kDense)};
  s.item.sparse = {Feature("item_id", data::FeatureKind::kSingle),
                   Feature("genres", data::FeatureKind::kMulti)};
  s.item.dense = {Feature("content", data::FeatureKind::kDense, 3)};
  return s;
}

TEST(ModelConfigTest, ParsesEveryDirective) {
  auto c = ParseModelConfig(kConfig);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->tables.size(), 2u);
  EXPECT_EQ(c->tables[0].config.dim, 16);
  EXPECT_FLOAT_EQ(c->tables[0].learning_rate, 0.1f);
  EXPECT_EQ(c->tables[1].config.optimizer.kind, sparse_emb::OptimizerKind::kSgd);
  ASSERT_EQ(c->features.size(), 3u);
  EXPECT_EQ(c->features[2].table, 1);
  EXPECT_EQ(c->features[2].pooling, models::Pooling::kSum);
  EXPECT_FALSE(c->user_dense);
  EXPECT_EQ(c->user_tower.mlp_hidden, (std::vector<int>{32, 16}));
  EXPECT_EQ(c->user_tower.activation, models::ActivationKind::kSilu);
  EXPECT_TRUE(c->item_tower.mlp_hidden.empty());
  EXPECT_EQ(c->loss.kind, models::LossKind::kBce);
  EXPECT_FALSE(c->logq);
  EXPECT_EQ(c->extra_negatives, 4);
  EXPECT_EQ(c->loss.hard_negatives, 0);  // off unless asked
  EXPECT_EQ(c->dense_optimizer.kind, models::DenseOptimizerKind::kSgd);
  EXPECT_FLOAT_EQ(c->dense_optimizer.momentum, 0.5f);
  EXPECT_EQ(c->warmup_steps, 3);
  EXPECT_EQ(c->batch_size, 16);
  EXPECT_EQ(c->dense_sync_every, 2);
}

TEST(ModelConfigTest, MineDirective) {
  auto off = ParseModelConfig(kConfig);
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_FALSE(off->mining.enabled());
  auto c = ParseModelConfig(std::string(kConfig) + "mine every=50 per_user=8 skip_top=0\n");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->mining.enabled());
  EXPECT_EQ(c->mining.every, 50);
  EXPECT_EQ(c->mining.per_user, 8);
  EXPECT_EQ(c->mining.skip_top, 0);
  auto defaults = ParseModelConfig(std::string(kConfig) + "mine every=7\n");
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->mining.per_user, MiningOptions().per_user);
  EXPECT_EQ(defaults->mining.skip_top, MiningOptions().skip_top);
  MiningOptions bad;
  bad.every = -1;
  EXPECT_FALSE(bad.Validate().ok());
}

// Table Adam without lr= gets a rate that moves rows (docs/models.md "Sparse Adam").
TEST(ModelConfigTest, TableAdamDefaultsToItsOwnRate) {
  auto c = ParseModelConfig(
      "table a dim=8 optimizer=adam\ntable b dim=8 optimizer=adam lr=0.002\ntable c dim=8\n"
      "feature user history table=a\nfeature item item_id table=b\nfeature item g table=c");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FLOAT_EQ(c->tables[0].learning_rate, TableSpec::kDefaultAdamLearningRate);
  EXPECT_FLOAT_EQ(c->tables[1].learning_rate, 0.002f);
  EXPECT_FLOAT_EQ(c->tables[2].learning_rate, 0.05f);
}

TEST(ModelConfigTest, ErrorsNameTheLine) {
  struct Case {
    const char* text;
    const char* expect;
  } cases[] = {
      {"table t dim=8\nbogus x=1\nfeature user history table=t", "cfg:2: unknown directive"},
      {"table t dim=8\nfeature user history table=nope", "cfg:2: feature history: table 'nope'"},
      {"table t dim=8\nfeature user history table=t\ntrain batch=x", "cfg:3: batch=x"},
      {"table t dim=8\nfeature user history table=t\nloss colour=red", "cfg:3: unknown key"},
      {"table t dim=3\nfeature user history table=t", "cfg:1"},
      {"table t dim=8\nfeature sideways history table=t", "cfg:2: side must be"},
      {"table t dim=8", "binds no feature"},
      // Numbers that would poison training, and repeated keys, name their line and key.
      {"table t dim=8 lr=nan\nfeature user history table=t", "cfg:1: lr=nan"},
      {"table t dim=8 lr=-1\nfeature user history table=t", "cfg:1: lr=-1"},
      {"table t dim=8 lr=inf\nfeature user history table=t", "cfg:1: lr=inf"},
      {"table t dim=8 lr=1e9\nfeature user history table=t", "cfg:1: lr=1e9"},
      {"table t dim=8 lr=0.1 lr=0.2\nfeature user history table=t",
       "cfg:1: key 'lr' appears twice"},
      {"table t dim=32 dim=8\nfeature user history table=t", "cfg:1: key 'dim' appears twice"},
      {"table t dim=8 wd=nan\nfeature user history table=t", "cfg:1: bad number for wd"},
      {"table t dim=8 init=uniform:1e30\nfeature user history table=t", "initializer scale"},
      {"table t dim=8 optimizer=adam eps=0\nfeature user history table=t", "adam needs epsilon"},
      {"table t dim=8\nfeature user history table=t\nloss temperature=0", "cfg:3: temperature=0"},
      {"table t dim=8\nfeature user history table=t\nloss temperature=nan",
       "cfg:3: temperature=nan"},
      {"table t dim=8\nfeature user history table=t\nloss hard_negatives=-1", "hard_negatives"},
      {"table t dim=8\nfeature user history table=t\nloss hard_weight=nan", "cfg:3: hard_weight"},
      {"table t dim=8\nfeature user history table=t\nloss kind=bce hard_weight=2",
       "cfg:3: loss: hard_weight != 1 needs kind=softmax"},
      {"table t dim=8\nfeature user history table=t\ndense_optimizer lr=nan", "cfg:3: lr=nan"},
      {"table t dim=8\nfeature user history table=t\ndense_optimizer eps=inf", "cfg:3: eps=inf"},
      {"table t dim=8\nfeature user history table=t\nschedule min_lr_ratio=nan",
       "cfg:3: min_lr_ratio=nan"},
      {"table t dim=8\nfeature user history table=t\ntrain dense_sync_every=0",
       "cfg:3: dense_sync_every=0"},
      {"table t dim=8\nfeature user history table=t\ntrain batch=8 batch=16",
       "cfg:3: key 'batch' appears twice"},
      // pooling=attention: ranges, heads dividing the table dim, user side only.
      {"table t dim=8\nfeature user history table=t pooling=attention heads=3", "cfg:2: heads=3"},
      {"table t dim=8\nfeature user history table=t pooling=attention max_len=0",
       "cfg:2: max_len=0"},
      {"table t dim=8\nfeature user history table=t pooling=attention blocks=9", "cfg:2: blocks=9"},
      {"table t dim=8\nfeature user history table=t pooling=attention ffn=x", "cfg:2: ffn=x"},
      {"table t dim=8\nfeature user history table=t pooling=attention seq_pool=max",
       "cfg:2: seq_pool must be"},
      {"table t dim=8\nfeature item item_id table=t pooling=attention", "cfg:2: pooling=attention"},
      {"table t dim=8\nfeature user history table=t heads=2", "cfg:2: unknown key 'heads'"},
      // mine: every= required, ranges, unknown keys, the column budget.
      {"table t dim=8\nfeature user history table=t\nmine per_user=4", "cfg:3: mine needs every"},
      {"table t dim=8\nfeature user history table=t\nmine every=0", "cfg:3: every=0"},
      {"table t dim=8\nfeature user history table=t\nmine every=10 per_user=0",
       "cfg:3: per_user=0"},
      {"table t dim=8\nfeature user history table=t\nmine every=10 per_user=2000",
       "cfg:3: per_user=2000"},
      {"table t dim=8\nfeature user history table=t\nmine every=10 skip_top=-1",
       "cfg:3: skip_top=-1"},
      {"table t dim=8\nfeature user history table=t\nmine every=x", "cfg:3: every=x"},
      {"table t dim=8\nfeature user history table=t\nmine every=10 top=3",
       "cfg:3: unknown key 'top'"},
      {"table t dim=8\nfeature user history table=t\nmine every=10 per_user=1024\n"
       "train batch=4096",
       "per_user * train batch"},
  };
  for (const Case& c : cases) {
    auto parsed = ParseModelConfig(c.text, "cfg");
    ASSERT_FALSE(parsed.ok()) << c.text;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find(c.expect), std::string::npos)
        << parsed.status() << " should contain " << c.expect;
  }
}

// A huge line is refused by its length: no token of it is echoed whole.
TEST(ModelConfigTest, HugeLineIsRefusedWithoutEchoingIt) {
  auto config = ParseModelConfig("table t dim=8 init=" + std::string(1 << 20, 'x'), "cfg");
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("cfg:1: a line of"), std::string::npos);
  EXPECT_LT(config.status().message().size(), 200u);
}

TEST(ModelConfigTest, BindResolvesSlotsAndInputWidths) {
  auto c = ParseModelConfig(kConfig);
  ASSERT_TRUE(c.ok());
  auto bound = BindModel(*c, Schema());
  ASSERT_TRUE(bound.ok()) << bound.status();
  ASSERT_EQ(bound->user_features.size(), 1u);
  EXPECT_EQ(bound->user_features[0].slot, 1);
  EXPECT_EQ(bound->user_dense_dim, 0);  // dense user off
  EXPECT_EQ(bound->item_dense_dim, 3);
  EXPECT_EQ(bound->two_tower.user.input_dims, (std::vector<int>{16}));
  EXPECT_EQ(bound->two_tower.item.input_dims, (std::vector<int>{16, 8, 3}));
  // pooling=attention becomes an encoder over the feature's block, its dim the table's.
  auto seq = ParseModelConfig(
      "table t dim=16\nfeature user history table=t pooling=attention heads=4 blocks=2 "
      "max_len=7 ffn=24 seq_pool=last\nfeature item item_id table=t\ndense user off");
  ASSERT_TRUE(seq.ok()) << seq.status();
  auto seq_bound = BindModel(*seq, Schema());
  ASSERT_TRUE(seq_bound.ok()) << seq_bound.status();
  ASSERT_EQ(seq_bound->two_tower.user_sequences.size(), 1u);
  const models::SequenceEncoderConfig& enc = seq_bound->two_tower.user_sequences[0].encoder;
  EXPECT_EQ(seq_bound->two_tower.user_sequences[0].block, 0);
  EXPECT_EQ(enc.dim, 16);
  EXPECT_EQ(enc.heads, 4);
  EXPECT_EQ(enc.blocks, 2);
  EXPECT_EQ(enc.max_len, 7);
  EXPECT_EQ(enc.ffn_dim, 24);
  EXPECT_EQ(enc.pool, models::SequencePool::kLast);
  FeatureSpec colour;
  colour.side = data::Side::kItem;
  colour.feature = "colour";
  c->features.push_back(colour);
  auto missing = BindModel(*c, Schema());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(missing.status().message().find("colour"), std::string::npos);
}

}  // namespace
}  // namespace towerps::worker
