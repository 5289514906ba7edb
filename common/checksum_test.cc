#include "common/checksum.h"

#include <string>

#include "gtest/gtest.h"

namespace towerps {
namespace {

TEST(Crc32cTest, KnownVectors) {
  // RFC 3720 (iSCSI) test vectors.
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(std::string(32, '\xff')), 0x62A8AB43u);
  EXPECT_EQ(Crc32c(""), 0u);
}

TEST(Crc32cTest, ExtendEqualsWhole) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data.push_back(static_cast<char>(i * 7));
  for (size_t split : {0ul, 1ul, 7ul, 8ul, 9ul, 500ul, 1000ul}) {
    uint32_t head = Crc32cExtend(0, data.data(), split);
    EXPECT_EQ(Crc32cExtend(head, data.data() + split, data.size() - split), Crc32c(data))
        << split;
  }
}

TEST(Crc32cTest, DetectsSingleBitFlip) {
  std::string data(4096, 'x');
  uint32_t original = Crc32c(data);
  data[1234] ^= 0x10;
  EXPECT_NE(Crc32c(data), original);
}

}  // namespace
}  // namespace towerps
