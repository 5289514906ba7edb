// The MovieLens and MovieTweetings readers (data/sources.h over data/text_io.h): input
// byte 0 picks the format, the rest is up to 3 files in the format's layout (ml-100k:
// u.data, u.user, u.item; ml-1m, ml-10m, movietweetings: ratings.dat, users.dat,
// movies.dat; ml-csv: ratings.csv, movies.csv), written to a cleared scratch
// directory and read into a RawDataset, bad lines counted.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "data/issue_log.h"
#include "data/raw_dataset.h"
#include "data/sources.h"
#include "fuzz/fuzz_util.h"

namespace {

struct Format {
  const char* name;
  std::vector<const char*> files;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Format kFormats[] = {
      {"ml-100k", {"u.data", "u.user", "u.item"}},
      {"ml-1m", {"ratings.dat", "users.dat", "movies.dat"}},
      {"ml-10m", {"ratings.dat", "users.dat", "movies.dat"}},
      {"movietweetings", {"ratings.dat", "users.dat", "movies.dat"}},
      {"ml-csv", {"ratings.csv", "movies.csv"}},
  };
  if (size == 0) return 0;
  const Format& format = kFormats[data[0] % std::size(kFormats)];
  std::vector<absl::string_view> parts =
      towerps::fuzz::SplitParts(towerps::fuzz::AsView(data + 1, size - 1), format.files.size());
  const towerps::fuzz::ScratchDir& dir = towerps::fuzz::ScratchDir::Get();
  dir.Clear();
  for (size_t i = 0; i < parts.size(); ++i) dir.Write(format.files[i], parts[i]);
  towerps::data::SourceOptions options;
  options.input = dir.path();
  options.format = format.name;
  towerps::data::IssueLog issues(/*strict=*/false, /*max_kept=*/16, /*max_logged=*/0);
  towerps::data::RawDataset raw;
  (void)towerps::data::ReadSource(options, &issues, &raw);
  return 0;
}
