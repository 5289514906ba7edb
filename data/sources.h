// Log readers: MovieLens (100k, 1M, 10M, 20M/25M CSV), MovieTweetings, and generic
// CSV/TSV described by a column spec (docs/column_spec.md). Each fills a RawDataset
// and reports malformed lines to an IssueLog. Single-threaded; thread-compatible.
//
// Attributes per format (sparse unless marked dense):
//   ml-100k         user: gender, occupation, age (dense); item: genres (multi), year
//   ml-1m           user: gender, age, occupation;          item: genres (multi), year
//   ml-10m, ml-csv  item: genres (multi), year
//   movietweetings  item: genres (multi), year (users.dat only defines the user ids)
//   spec            whatever the spec names (plus "content" from an item vector file)
#ifndef TOWERPS_DATA_SOURCES_H_
#define TOWERPS_DATA_SOURCES_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "data/issue_log.h"
#include "data/raw_dataset.h"

namespace towerps::data {

struct SourceOptions {
  // Directory holding the source files (for "spec": the directory the spec's
  // relative paths are resolved against; empty = the spec file's directory).
  std::string input;
  // auto | ml-100k | ml-1m | ml-10m | ml-csv | movietweetings | spec.
  std::string format = "auto";
  // Column spec file; implies format "spec" when format is "auto".
  std::string column_spec;

  // InvalidArgument for an unknown format or a missing input/spec.
  absl::Status Validate() const;
};

// The concrete format for `options` (auto: a column spec or <input>/towerps.spec ->
// spec; u.data -> ml-100k; ratings.csv -> ml-csv; ratings.dat with a two-field
// users.dat -> movietweetings, a five-field one -> ml-1m, none -> ml-10m).
// Errors: NotFound when nothing recognisable is in the directory.
absl::StatusOr<std::string> DetectFormat(const SourceOptions& options);

// Reads the source into *out. Malformed lines go to `issues` (strict: the first is
// returned as InvalidArgument). Errors: NotFound for a missing required file,
// InvalidArgument for a bad spec.
absl::Status ReadSource(const SourceOptions& options, IssueLog* issues, RawDataset* out);

// The format readers (directory layout as in the formats' READMEs).
absl::Status ReadMovieLens100k(const std::string& dir, IssueLog* issues, RawDataset* out);
// ml-1m, ml-10m and movietweetings share the "::" layout; `format` picks users.dat's.
absl::Status ReadDatFormat(const std::string& dir, const std::string& format, IssueLog* issues,
                           RawDataset* out);
absl::Status ReadMovieLensCsv(const std::string& dir, IssueLog* issues, RawDataset* out);

}  // namespace towerps::data

#endif  // TOWERPS_DATA_SOURCES_H_
