#include "common/file_binding.h"

#include <string>

#include "common/checksum.h"
#include "gtest/gtest.h"

namespace towerps {
namespace {

TEST(FileBindingTest, RoundTripsAndRefusesDamage) {
  const FileBinding b{0xfeedULL, 42, 3, "item_id", FingerprintOf("dim=32")};
  const std::string bytes = EncodeFileBinding(b);
  ASSERT_EQ(bytes.size(), kFileBindingBytes);
  auto decoded = DecodeFileBinding(bytes + "payload", "f");
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(BindingDifference(*decoded, b, /*compare_origin=*/true), "");
  EXPECT_EQ(DecodeFileBinding(bytes.substr(0, 100), "f").status().code(),
            absl::StatusCode::kDataLoss);
  for (size_t at : {size_t{9}, size_t{20}, size_t{50}, size_t{121}}) {
    std::string flipped = bytes;
    flipped[at] ^= 4;
    EXPECT_EQ(DecodeFileBinding(flipped, "f").status().code(), absl::StatusCode::kDataLoss) << at;
  }
}

TEST(FileBindingTest, DifferencesAreNamedOnOneLine) {
  const FileBinding a{1, 10, 0, "items", 7};
  FileBinding b = a;
  b.step = 20;
  b.name = "users\nx";
  const absl::Status s = CheckFileBinding(a, b, /*compare_origin=*/true, "p");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);  // another table: a config change
  EXPECT_EQ(std::string(s.message()),
            "p belongs elsewhere: step 10, not 20; table 'items', not 'users\\nx'");
  b = a;
  b.job_id = 2;
  EXPECT_EQ(CheckFileBinding(a, b, true, "p").code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(CheckFileBinding(a, b, /*compare_origin=*/false, "p").ok());
  EXPECT_NE(FingerprintOf("dim=32"), FingerprintOf("dim=33"));
}

// A CRC stored in the data it covers is masked: the CRC of bytes followed by their
// plain CRC is one constant, whatever the bytes.
TEST(FileBindingTest, MaskedCrcsKeepWholeFileChecksumsApart) {
  auto with_crc = [](const std::string& body, bool masked) {
    const uint32_t crc = masked ? MaskCrc32c(Crc32c(body)) : Crc32c(body);
    return body + std::string(reinterpret_cast<const char*>(&crc), 4);
  };
  EXPECT_EQ(Crc32c(with_crc("first", false)), Crc32c(with_crc("other", false)));
  EXPECT_NE(Crc32c(with_crc("first", true)), Crc32c(with_crc("other", true)));
  EXPECT_EQ(UnmaskCrc32c(MaskCrc32c(0x12345678u)), 0x12345678u);
}

}  // namespace
}  // namespace towerps
