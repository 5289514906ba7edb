#include "data/sources.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/status.h"
#include "data/column_spec.h"
#include "data/text_io.h"

namespace towerps::data {
namespace {

constexpr const char* kFormats[] = {"auto",   "ml-100k",        "ml-1m", "ml-10m",
                                    "ml-csv", "movietweetings", "spec"};

// Fields in the first line of a "::" file, or 0 when it is empty.
absl::StatusOr<size_t> FirstLineFields(const std::string& path) {
  TOWERPS_ASSIGN_OR_RETURN(LineReader reader, LineReader::Open(path));
  absl::string_view line;
  TOWERPS_ASSIGN_OR_RETURN(bool any, reader.Next(&line));
  if (!any) return 0;
  std::vector<absl::string_view> f;
  SplitFields(line, "::", &f);
  return f.size();
}

std::string DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

}  // namespace

absl::Status SourceOptions::Validate() const {
  bool known = false;
  for (const char* f : kFormats) known = known || format == f;
  if (!known) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown --format '", format,
        "' (auto, ml-100k, ml-1m, ml-10m, ml-csv, movietweetings, spec)"));
  }
  if (format == "spec" && column_spec.empty() && input.empty()) {
    return absl::InvalidArgumentError("--format=spec needs --column_spec or --input");
  }
  if (format != "spec" && column_spec.empty() && input.empty()) {
    return absl::InvalidArgumentError("--input (a dataset directory) is required");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> DetectFormat(const SourceOptions& options) {
  if (options.format != "auto") return options.format;
  if (!options.column_spec.empty()) return std::string("spec");
  const std::string& dir = options.input;
  auto has = [&](const char* name) { return PathExists(absl::StrCat(dir, "/", name)); };
  if (!PathExists(dir)) return absl::NotFoundError(absl::StrCat("input directory ", dir, " does not exist"));
  if (has("towerps.spec")) return std::string("spec");
  if (has("u.data")) return std::string("ml-100k");
  if (has("ratings.csv")) return std::string("ml-csv");
  if (has("ratings.dat")) {
    if (!has("users.dat")) return std::string("ml-10m");
    TOWERPS_ASSIGN_OR_RETURN(size_t fields, FirstLineFields(absl::StrCat(dir, "/users.dat")));
    return std::string(fields == 2 ? "movietweetings" : "ml-1m");
  }
  return absl::NotFoundError(absl::StrCat(
      "no recognisable dataset in ", dir,
      " (expected u.data, ratings.dat, ratings.csv or towerps.spec; or pass --column_spec)"));
}

absl::Status ReadSource(const SourceOptions& options, IssueLog* issues, RawDataset* out) {
  TOWERPS_RETURN_IF_ERROR(options.Validate());
  TOWERPS_ASSIGN_OR_RETURN(std::string format, DetectFormat(options));
  const std::string& dir = options.input;
  if (format == "ml-100k") return ReadMovieLens100k(dir, issues, out);
  if (format == "ml-csv") return ReadMovieLensCsv(dir, issues, out);
  if (format == "spec") {
    std::string spec_path =
        options.column_spec.empty() ? absl::StrCat(dir, "/towerps.spec") : options.column_spec;
    TOWERPS_ASSIGN_OR_RETURN(ColumnSpec spec, LoadColumnSpec(spec_path));
    return ReadWithColumnSpec(spec, dir.empty() ? DirOf(spec_path) : dir, issues, out);
  }
  return ReadDatFormat(dir, format, issues, out);
}

}  // namespace towerps::data
