// The generic CSV/TSV reader (data/column_spec.h over data/text_io.h): the input is
// up to 3 parts, a column spec, the interaction log and the item vectors. The spec's
// file names are replaced by fixed ones in the scratch directory (a fuzzed spec must
// not read arbitrary paths); the log is read into a RawDataset, bad lines counted.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "data/column_spec.h"
#include "data/issue_log.h"
#include "data/raw_dataset.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<absl::string_view> parts =
      towerps::fuzz::SplitParts(towerps::fuzz::AsView(data, size), 3);
  auto spec = towerps::data::ParseColumnSpec(parts[0]);
  if (!spec.ok()) return 0;
  parts.resize(3);
  const towerps::fuzz::ScratchDir& dir = towerps::fuzz::ScratchDir::Get();
  dir.Write("log.csv", parts[1]);
  spec->interactions = "log.csv";
  if (!spec->item_vectors.empty()) {
    dir.Write("vectors.csv", parts[2]);
    spec->item_vectors = "vectors.csv";
  }
  towerps::data::IssueLog issues(/*strict=*/false, /*max_kept=*/16, /*max_logged=*/0);
  towerps::data::RawDataset raw;
  (void)towerps::data::ReadWithColumnSpec(*spec, dir.path(), &issues, &raw);
  return 0;
}
