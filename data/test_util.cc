#include "data/test_util.h"

#include <stdlib.h>

#include <algorithm>
#include <filesystem>

#include "common/file_util.h"
#include "data/example_reader.h"
#include "glog/logging.h"
#include "gtest/gtest.h"

namespace towerps::data::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string tmpl = std::string(base != nullptr ? base : "/tmp") + "/towerps_data_test.XXXXXX";
  CHECK(::mkdtemp(tmpl.data()) != nullptr) << "mkdtemp " << tmpl;
  path_ = tmpl;
}

TempDir::~TempDir() { (void)RemoveAll(path_); }

void WriteFile(const std::string& path, absl::string_view contents) {
  absl::Status s = WriteFileAtomically(path, contents);
  CHECK(s.ok()) << s;
}

std::vector<Example> ReadSplit(const std::string& dataset_dir, const std::string& split) {
  ExampleReaderOptions options;
  options.dataset_dir = dataset_dir;
  options.split = split;
  auto reader = ExampleReader::Open(options);
  EXPECT_TRUE(reader.ok()) << reader.status();
  std::vector<Example> out;
  if (!reader.ok()) return out;
  Example e;
  while (true) {
    absl::StatusOr<bool> more = (*reader)->Next(&e);
    EXPECT_TRUE(more.ok()) << more.status();
    if (!more.ok() || !*more) break;
    out.push_back(e);
  }
  return out;
}

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace towerps::data::testing
