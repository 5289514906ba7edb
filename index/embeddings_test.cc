#include "index/embeddings.h"

#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "common/file_util.h"
#include "common/test_dir.h"
#include "gtest/gtest.h"

namespace towerps::index {
namespace {

TEST(EmbeddingsTest, RoundTripInChunksWithNpy) {
  const std::string dir = FreshTestDir("emb_roundtrip", /*create=*/true);
  auto writer = EmbeddingWriter::Open(dir + "/items.emb", dir + "/items", data::Side::kItem, 3, 5,
                                      42);
  ASSERT_TRUE(writer.ok()) << writer.status();
  std::vector<float> values(15);
  for (int i = 0; i < 15; ++i) values[i] = 0.5f * i;
  std::vector<uint64_t> keys = {~uint64_t{0} - 1, 2, 3, 4, 5};
  std::vector<std::string> ids = {"a", "", "ccc", "d d", "e"};
  ASSERT_TRUE((*writer)->Append(absl::MakeSpan(keys).subspan(0, 2),
                                absl::MakeSpan(ids).subspan(0, 2),
                                absl::MakeSpan(values).subspan(0, 6)).ok());
  EXPECT_FALSE((*writer)->Finish().ok()) << "3 rows are missing";
  ASSERT_TRUE((*writer)->Append(absl::MakeSpan(keys).subspan(2), absl::MakeSpan(ids).subspan(2),
                                absl::MakeSpan(values).subspan(6)).ok());
  EXPECT_EQ((*writer)->Append(keys, ids, values).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE((*writer)->Finish().ok());

  auto table = EmbeddingTable::Read(dir + "/items.emb");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ((*table)->side, data::Side::kItem);
  EXPECT_EQ((*table)->dim, 3);
  EXPECT_EQ((*table)->model_step, 42);
  EXPECT_EQ((*table)->keys, keys);
  EXPECT_EQ((*table)->raw_ids, ids);
  EXPECT_EQ((*table)->values, values);
  EmbeddingLookup lookup(table->get());
  EXPECT_EQ(lookup.RowOfKey(4), 3);
  EXPECT_EQ(lookup.RowOfRawId("ccc"), 2);
  EXPECT_EQ(lookup.RowOfRawId("zzz"), -1);

  // .npy: a v1.0 header padded to 64 bytes, then the raw little-endian matrix.
  auto npy = ReadFileToString(dir + "/items.npy");
  ASSERT_TRUE(npy.ok());
  EXPECT_EQ(npy->substr(0, 6), "\x93NUMPY");
  const size_t header = 10 + static_cast<uint8_t>((*npy)[8]) + 256 * static_cast<uint8_t>((*npy)[9]);
  EXPECT_EQ(header % 64, 0u);
  EXPECT_NE(npy->find("'shape': (5, 3)"), std::string::npos);
  ASSERT_EQ(npy->size(), header + 15 * sizeof(float));
  EXPECT_EQ(std::memcmp(npy->data() + header, values.data(), 15 * sizeof(float)), 0);
  auto keys_npy = ReadFileToString(dir + "/items.keys.npy");
  ASSERT_TRUE(keys_npy.ok());
  EXPECT_NE(keys_npy->find("'descr': '<u8'"), std::string::npos);
}

TEST(EmbeddingsTest, CorruptionIsDetected) {
  const std::string dir = FreshTestDir("emb_corrupt", /*create=*/true);
  auto writer = EmbeddingWriter::Open(dir + "/users.emb", "", data::Side::kUser, 2, 2, 1);
  ASSERT_TRUE(writer.ok());
  std::vector<uint64_t> keys = {7, 8};
  std::vector<std::string> ids = {"u7", "u8"};
  std::vector<float> values = {1, 2, 3, 4};
  ASSERT_TRUE((*writer)->Append(keys, ids, values).ok());
  ASSERT_TRUE((*writer)->Finish().ok());
  EXPECT_FALSE(PathExists(dir + "/users.npy"));
  auto bytes = ReadFileToString(dir + "/users.emb");
  ASSERT_TRUE(bytes.ok());
  for (size_t at : {size_t{3}, size_t{20}, size_t{44}, bytes->size() - 1}) {
    std::string bad = *bytes;
    bad[at] ^= 1;
    ASSERT_TRUE(WriteFileAtomically(dir + "/bad.emb", bad).ok());
    EXPECT_EQ(EmbeddingTable::Read(dir + "/bad.emb").status().code(),
              absl::StatusCode::kDataLoss) << "byte " << at;
  }
  ASSERT_TRUE(WriteFileAtomically(dir + "/short.emb", bytes->substr(0, 30)).ok());
  EXPECT_EQ(EmbeddingTable::Read(dir + "/short.emb").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(EmbeddingTable::Read(dir + "/absent.emb").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace towerps::index
