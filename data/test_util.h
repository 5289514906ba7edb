// Helpers for data_test: temporary directories, small files, reading a split back.
#ifndef TOWERPS_DATA_TEST_UTIL_H_
#define TOWERPS_DATA_TEST_UTIL_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "data/example.h"

namespace towerps::data::testing {

// A fresh directory under $TEST_TMPDIR (or /tmp), removed with its contents at scope exit.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(absl::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

// Writes `contents` to `path` (CHECK-fails on error: test setup only).
void WriteFile(const std::string& path, absl::string_view contents);

// Every example of `split`, read in order by one reader (ASSERT-style: empty on error).
std::vector<Example> ReadSplit(const std::string& dataset_dir, const std::string& split);

// Names in `dir` (not recursive), sorted.
std::vector<std::string> ListDir(const std::string& dir);

}  // namespace towerps::data::testing

#endif  // TOWERPS_DATA_TEST_UTIL_H_
