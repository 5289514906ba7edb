// For tests only: a scratch directory per test process.
#ifndef TOWERPS_COMMON_TEST_DIR_H_
#define TOWERPS_COMMON_TEST_DIR_H_

#include <unistd.h>

#include <filesystem>
#include <string>

#include "common/file_util.h"
#include "gtest/gtest.h"

namespace towerps {

// <gtest temp dir>/<name>_<pid>, emptied (a failure if that fails); created too when
// `create`.
inline std::string FreshTestDir(const std::string& name, bool create = false) {
  std::string dir = std::filesystem::path(::testing::TempDir()) /
                    (name + "_" + std::to_string(::getpid()));
  EXPECT_TRUE(RemoveAll(dir).ok());
  if (create) {
    EXPECT_TRUE(CreateDirectories(dir).ok());
  }
  return dir;
}

}  // namespace towerps

#endif  // TOWERPS_COMMON_TEST_DIR_H_
