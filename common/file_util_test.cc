#include "common/file_util.h"

#include <unistd.h>

#include <filesystem>
#include <string>

#include "gtest/gtest.h"

namespace towerps {
namespace {

class FileUtilTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("file_util_test_" + std::to_string(::getpid()));
    ASSERT_TRUE(RemoveAll(dir_.string()).ok());
    ASSERT_TRUE(CreateDirectories(dir_.string()).ok());
  }
  void TearDown() override { (void)RemoveAll(dir_.string()); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  std::filesystem::path dir_;
};

TEST_F(FileUtilTest, AtomicWriteRoundTrip) {
  std::string big(3 << 20, 'z');  // larger than the writer's buffer
  big[12345] = 'q';
  ASSERT_TRUE(WriteFileAtomically(Path("a"), big).ok());
  auto read = ReadFileToString(Path("a"));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, big);
}

TEST_F(FileUtilTest, UncommittedWriterLeavesOldFileAndNoTemporary) {
  ASSERT_TRUE(WriteFileAtomically(Path("a"), "old").ok());
  {
    auto writer = AtomicFileWriter::Open(Path("a"));
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE(writer->Append("new contents that never land").ok());
  }  // destroyed without Commit: a crash mid-write
  EXPECT_EQ(*ReadFileToString(Path("a")), "old");
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 1);
}

TEST_F(FileUtilTest, ErrorsHaveCodesAndPaths) {
  auto missing = ReadFileToString(Path("nope"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("nope"), std::string::npos);
  EXPECT_EQ(WriteFileAtomically(Path("no/such/dir/f"), "x").code(),
            absl::StatusCode::kNotFound);
  auto writer = AtomicFileWriter::Open(Path("b"));
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE(writer->Commit().ok());
  EXPECT_EQ(writer->Commit().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(FileUtilTest, AppendToFileCreatesThenAppends) {
  ASSERT_TRUE(AppendToFile(Path("log"), "one\n").ok());
  ASSERT_TRUE(AppendToFile(Path("log"), "two\n").ok());
  EXPECT_EQ(*ReadFileToString(Path("log")), "one\ntwo\n");
  EXPECT_EQ(AppendToFile(Path("no/such/dir/log"), "x").code(), absl::StatusCode::kNotFound);
  if (PathExists("/dev/full")) {
    EXPECT_EQ(AppendToFile("/dev/full", "x\n").code(), absl::StatusCode::kResourceExhausted);
  }
}

TEST_F(FileUtilTest, RenameDirectoryMovesWholeTree) {
  ASSERT_TRUE(CreateDirectories(Path("tmp/sub")).ok());
  ASSERT_TRUE(WriteFileAtomically(Path("tmp/sub/f"), "x").ok());
  ASSERT_TRUE(RenameDirectory(Path("tmp"), Path("final")).ok());
  EXPECT_FALSE(PathExists(Path("tmp")));
  EXPECT_EQ(*ReadFileToString(Path("final/sub/f")), "x");
}

}  // namespace
}  // namespace towerps
