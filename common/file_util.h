// File helpers with Status errors: whole-file reads, crash-safe writes, directories.
//
// Crash safety: AtomicFileWriter writes to "<path>.tmp.<pid>", fsyncs it, renames it
// over <path> and fsyncs the directory, so a reader sees the old file or the whole
// new one, never a torn one. Thread-compatible.
#ifndef TOWERPS_COMMON_FILE_UTIL_H_
#define TOWERPS_COMMON_FILE_UTIL_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace towerps {

// Reads the whole file. NotFound if absent; other errno-mapped errors.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

// Writes `contents` to `path` atomically (temporary name, fsync, rename, dir fsync),
// with permission bits `mode` (e.g. 0600 for secrets; the umask may clear more).
absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents,
                                 unsigned mode = 0644);

// Creates `path` and missing parents (like mkdir -p). OK if it exists as a directory.
absl::Status CreateDirectories(const std::string& path);

// Removes `path` recursively; OK if it does not exist.
absl::Status RemoveAll(const std::string& path);

// fsyncs the directory so that renames inside it survive a crash.
absl::Status SyncDirectory(const std::string& dir);

// Atomically replaces directory `to` by directory `from` (rename; `to` must not exist
// or be an empty directory), then fsyncs the parent.
absl::Status RenameDirectory(const std::string& from, const std::string& to);

bool PathExists(const std::string& path);

// Appends `bytes` (e.g. one JSON line) to the file open at `fd` with O_APPEND in one
// write(), so the bytes land whole at the end of the file, never interleaved with
// another appender's. A short write (full disk) is not completed by a second one
// (which could be interleaved): it is an error. `path` names the file in errors.
// Errors: errno-mapped (ResourceExhausted for a full disk or a short write).
absl::Status AppendOnce(int fd, absl::string_view bytes, absl::string_view path);

// Opens `path` for appending (created with mode 0644 when missing), AppendOnce, closes.
// Errors: AppendOnce's, errno-mapped open errors (NotFound for a missing directory).
absl::Status AppendToFile(const std::string& path, absl::string_view bytes);

// Streams bytes to "<path>.tmp.<pid>"; Commit() makes them appear at `path`
// atomically. Destroying an uncommitted writer removes the temporary file.
class AtomicFileWriter {
 public:
  // Opens the temporary file with permission bits `mode`. Errors: errno-mapped
  // (NotFound for a missing directory).
  static absl::StatusOr<AtomicFileWriter> Open(const std::string& path, unsigned mode = 0644);

  AtomicFileWriter(AtomicFileWriter&& other) noexcept;
  AtomicFileWriter& operator=(AtomicFileWriter&& other) noexcept;
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
  ~AtomicFileWriter();

  // Appends bytes (buffered). Errors: ResourceExhausted on a full disk, Internal.
  absl::Status Append(absl::string_view bytes);
  // Flushes, fsyncs, renames into place and fsyncs the directory. Once only.
  absl::Status Commit();
  // Bytes appended so far.
  uint64_t size() const { return size_; }

 private:
  AtomicFileWriter(int fd, std::string path, std::string tmp_path);
  absl::Status FlushBuffer();

  int fd_ = -1;
  std::string path_;
  std::string tmp_path_;
  std::string buffer_;
  uint64_t size_ = 0;
};

}  // namespace towerps

#endif  // TOWERPS_COMMON_FILE_UTIL_H_
