// Streaming text input for the log readers: a line reader with bounded memory and
// field splitting for "::", tab, '|' and quoted CSV, plus UTF-8 checks.
//
// LineReader is thread-compatible; the free functions are thread-safe.
#ifndef TOWERPS_DATA_TEXT_IO_H_
#define TOWERPS_DATA_TEXT_IO_H_

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace towerps::data {

// Reads a file line by line through a fixed buffer (1 MiB), so files of any size
// stream in bounded memory. Lines end at '\n'; a trailing '\r' is removed.
// With max_line_bytes > 0 a longer line (hostile input) is returned cut to its first
// max_line_bytes bytes (last_line_cut()) and the rest of it is skipped, so memory stays
// bounded by ~2 * max(max_line_bytes, 1 MiB) whatever the file holds.
class LineReader {
 public:
  // Errors: NotFound for a missing file (message names the path), others errno-mapped.
  static absl::StatusOr<LineReader> Open(const std::string& path, size_t max_line_bytes = 0);

  LineReader(LineReader&& other) noexcept;
  LineReader& operator=(LineReader&& other) = delete;
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;
  ~LineReader();

  // Sets *line to the next line (valid until the next call) and returns true, or
  // returns false at the end of the file. Errors: read failures (errno-mapped).
  absl::StatusOr<bool> Next(absl::string_view* line);

  // The line last returned was longer than max_line_bytes and was cut.
  bool last_line_cut() const { return last_cut_; }
  // The line last returned ended with '\n' (false: the end of the file, e.g. a line
  // still being written, or a cut line).
  bool last_line_complete() const { return last_complete_; }

  // 1-based number of the line last returned.
  int64_t line_number() const { return line_number_; }
  // Bytes consumed so far.
  uint64_t bytes_read() const { return bytes_read_; }
  const std::string& path() const { return path_; }

 private:
  LineReader(std::FILE* file, std::string path, size_t max_line_bytes);

  std::FILE* file_ = nullptr;
  std::string path_;
  std::string buffer_;
  size_t begin_ = 0;  // start of unread bytes in buffer_
  bool eof_ = false;
  size_t max_line_bytes_ = 0;  // 0: unbounded
  bool skipping_ = false;      // discarding the rest of a cut line
  bool last_cut_ = false;
  bool last_complete_ = false;
  int64_t line_number_ = 0;
  uint64_t bytes_read_ = 0;
};

// Calls fn(line, line_number) -> absl::Status for every line of `path`, stopping at
// the first error. Errors: those of LineReader and of fn.
template <typename Fn>
absl::Status ForEachLine(const std::string& path, Fn&& fn) {
  absl::StatusOr<LineReader> reader = LineReader::Open(path);
  if (!reader.ok()) return reader.status();
  absl::string_view line;
  while (true) {
    absl::StatusOr<bool> more = reader->Next(&line);
    if (!more.ok()) return more.status();
    if (!*more) return absl::OkStatus();
    absl::Status s = fn(line, reader->line_number());
    if (!s.ok()) return s;
  }
}

// The part of `path` after the last '/'.
absl::string_view BaseName(absl::string_view path);

// Splits `line` on `delimiter` (one or more characters) into *fields (views into
// `line`). Empty fields are kept: "a::::b" on "::" gives {"a", "", "b"}.
void SplitFields(absl::string_view line, absl::string_view delimiter,
                 std::vector<absl::string_view>* fields);

// Splits one CSV line (RFC 4180 quoting: "a, b" and "" inside quotes) on `delimiter`.
// Unquoted fields are views into `line`; a quoted field is unescaped into
// *scratch (which must outlive the views and is cleared first). Returns false for
// an unterminated quote.
bool SplitCsv(absl::string_view line, char delimiter, std::vector<absl::string_view>* fields,
              std::vector<std::string>* scratch);

// True when `s` is well-formed UTF-8 (no overlongs, surrogates or values > U+10FFFF).
bool IsValidUtf8(absl::string_view s);

// Converts ISO-8859-1 bytes to UTF-8 (MovieLens 100k/1M titles are Latin-1).
std::string Latin1ToUtf8(absl::string_view s);

// Strips ASCII whitespace on both sides.
absl::string_view Trim(absl::string_view s);

}  // namespace towerps::data

#endif  // TOWERPS_DATA_TEXT_IO_H_
