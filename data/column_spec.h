// The column spec: how a generic CSV/TSV interaction log maps to a dataset
// (reference: docs/column_spec.md). Thread-compatible plain values.
//
//   interactions = interactions.csv        # required; relative to the input directory
//   delimiter = comma                      # comma | tab | pipe | "::" | any literal
//   header = true                          # first line names the columns
//   user = user_id                         # required: column name or 0-based index
//   item = item_id                         # required
//   timestamp = ts                         # optional; default: the line number
//   label = click:1, like:2                # optional; label = sum(weight * value); default 1
//   user_categorical = country, language   # single-valued sparse features
//   user_multi =                           # multi-valued, split on multi_separator
//   user_dense = age:log1p                 # floats; ":log1p" applies log1p(max(x, 0))
//   item_categorical = creator
//   item_multi = tags
//   item_dense = duration:log1p
//   multi_separator = |
//   item_vectors = item_vectors.csv        # optional: item, v1..vd per line -> "content"
//   numeric_ids = false                    # true: ids must be digits
#ifndef TOWERPS_DATA_COLUMN_SPEC_H_
#define TOWERPS_DATA_COLUMN_SPEC_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "data/issue_log.h"
#include "data/raw_dataset.h"

namespace towerps::data {

struct ColumnSpec {
  struct Column {
    std::string name;    // column name (header) or index; also the feature name
    float weight = 1;    // label columns
    bool log1p = false;  // dense columns
  };
  std::string interactions;
  std::string delimiter = ",";
  bool header = true;
  Column user, item, timestamp;  // timestamp.name empty = line number
  std::vector<Column> labels;
  std::vector<Column> user_categorical, user_multi, user_dense;
  std::vector<Column> item_categorical, item_multi, item_dense;
  std::string multi_separator = "|";
  std::string item_vectors;
  bool numeric_ids = false;
};

// Longest line a column spec may have; a longer one is refused without being echoed.
inline constexpr size_t kMaxSpecLineBytes = 4096;

// Parses spec text. Errors: InvalidArgument "<spec>:<line>: <reason>" for unknown
// keys, bad values, missing required keys or reserved feature names.
absl::StatusOr<ColumnSpec> ParseColumnSpec(absl::string_view text, absl::string_view name = "spec");
// Reads and parses a spec file. Errors: NotFound, InvalidArgument.
absl::StatusOr<ColumnSpec> LoadColumnSpec(const std::string& path);

// Reads the log (and item vectors) named by `spec`, relative to `dir`, into *out.
// Attribute columns give each entity its attributes from its earliest row.
// Errors: NotFound for a missing file; InvalidArgument when a spec column is not in
// the header; malformed lines go to `issues`.
absl::Status ReadWithColumnSpec(const ColumnSpec& spec, const std::string& dir, IssueLog* issues,
                                RawDataset* out);

}  // namespace towerps::data

#endif  // TOWERPS_DATA_COLUMN_SPEC_H_
