#include "ps/shard_map.h"

#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace towerps::ps {
namespace {

TEST(ShardMapTest, BalancedSpreadsKeysEvenly) {
  auto map = ShardMap::Balanced(4096, 3);
  ASSERT_TRUE(map.ok());
  std::vector<int> counts(3);
  for (uint64_t key = 0; key < 300000; ++key) ++counts[map->ServerOf(key)];  // sequential ids
  for (int c : counts) EXPECT_NEAR(c, 100000, 3000);
}

TEST(ShardMapTest, WireRoundTripKeepsOwnership) {
  auto map = ShardMap::Balanced(1024, 4);
  ASSERT_TRUE(map.ok());
  auto copy = ShardMap::FromWire(map->ToWire(), 4);
  ASSERT_TRUE(copy.ok()) << copy.status();
  std::mt19937_64 rng(1);
  for (int i = 0; i < 10000; ++i) {
    uint64_t key = rng();
    EXPECT_EQ(copy->ServerOf(key), map->ServerOf(key));
  }
}

TEST(ShardMapTest, BadInputRefused) {
  EXPECT_FALSE(ShardMap::Balanced(2, 3).ok());
  EXPECT_FALSE(ShardMap::Balanced(1024, 0).ok());
  EXPECT_FALSE(ShardMap::FromWire("", 1).ok());
  EXPECT_FALSE(ShardMap::FromWire("abc", 1).ok());
  std::string owners("\x05\x00", 2);  // owner 5 of 2 servers
  EXPECT_EQ(ShardMap::FromWire(owners, 2).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ShardMapTest, GroupByServerPartitionsPositions) {
  auto map = ShardMap::Balanced(64, 2);
  ASSERT_TRUE(map.ok());
  std::vector<uint64_t> keys;
  for (uint64_t k = 0; k < 1000; ++k) keys.push_back(k * 7919);
  std::vector<std::vector<uint32_t>> positions;
  map->GroupByServer(keys, &positions);
  ASSERT_EQ(positions.size(), 2u);
  EXPECT_EQ(positions[0].size() + positions[1].size(), keys.size());
  for (int s = 0; s < 2; ++s) {
    for (uint32_t i : positions[s]) EXPECT_EQ(map->ServerOf(keys[i]), s);
  }
}

TEST(ShardMapTest, DenseBlocksTileTheArray) {
  auto map = ShardMap::Balanced(16, 3);
  ASSERT_TRUE(map.ok());
  uint64_t expected_begin = 0;
  for (int s = 0; s < 3; ++s) {
    auto [begin, end] = map->DenseBlock(s, 1000);
    EXPECT_EQ(begin, expected_begin);
    EXPECT_GE(end - begin, 333u);
    expected_begin = end;
  }
  EXPECT_EQ(expected_begin, 1000u);
}

}  // namespace
}  // namespace towerps::ps
