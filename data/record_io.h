// Record files: the container of example shards and entity files.
//
// Layout (little-endian; docs/data.md):
//   header, 32 bytes: magic "TPSRECRD", u32 version (1), u32 kind, u64 record_count,
//                     u32 reserved (0), u32 CRC-32C of the 28 bytes before it
//   record*:          u32 length, u32 crc, length bytes of payload
// where crc is CRC-32C over the 4 length bytes followed by the payload. A reader
// reports DataLoss for a bad magic, header or record checksum, a truncated record,
// or a record count that differs from the header's.
// Both classes are thread-compatible.
#ifndef TOWERPS_DATA_RECORD_IO_H_
#define TOWERPS_DATA_RECORD_IO_H_

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/file_util.h"

namespace towerps::data {

enum class RecordKind : uint32_t { kExamples = 1, kUsers = 2, kItems = 3 };

inline constexpr uint64_t kRecordHeaderBytes = 32;
inline constexpr uint32_t kMaxRecordBytes = 64u << 20;

// Writes a record file atomically (AtomicFileWriter): it appears at `path` on
// Finish() only. The record count is declared up front because the header comes first.
class RecordFileWriter {
 public:
  // Errors: errno-mapped from creating the temporary file.
  static absl::StatusOr<RecordFileWriter> Open(const std::string& path, RecordKind kind,
                                               uint64_t record_count);

  // Appends one record. FailedPrecondition past the declared count; I/O errors.
  absl::Status Append(absl::string_view payload);
  // FailedPrecondition unless exactly record_count records were appended; then
  // fsync + rename into place.
  absl::Status Finish();

 private:
  explicit RecordFileWriter(AtomicFileWriter file, uint64_t record_count);

  AtomicFileWriter file_;
  uint64_t declared_ = 0;
  uint64_t written_ = 0;
  std::string frame_;
};

class RecordFileReader {
 public:
  // Opens and verifies the header. Errors: NotFound, DataLoss (bad header),
  // InvalidArgument when the file holds another kind of record.
  static absl::StatusOr<RecordFileReader> Open(const std::string& path, RecordKind kind);

  RecordFileReader(RecordFileReader&& other) noexcept;
  RecordFileReader& operator=(RecordFileReader&& other) = delete;
  RecordFileReader(const RecordFileReader&) = delete;
  RecordFileReader& operator=(const RecordFileReader&) = delete;
  ~RecordFileReader();

  // Continues at byte `offset` (a value of offset() seen earlier), which holds record
  // number `record_index`. Errors: InvalidArgument when offset is outside the file.
  absl::Status Seek(uint64_t offset, uint64_t record_index);

  // Reads the next payload into *payload and returns true; false at the end.
  // Errors: DataLoss (checksum, truncation, count mismatch) naming path and offset.
  absl::StatusOr<bool> Next(std::string* payload);

  uint64_t record_count() const { return record_count_; }
  // Byte offset of the next record, and its index.
  uint64_t offset() const { return offset_; }
  uint64_t record_index() const { return record_index_; }
  const std::string& path() const { return path_; }

 private:
  RecordFileReader(std::FILE* file, std::string path, uint64_t record_count, uint64_t file_size);
  absl::Status Corrupt(absl::string_view what) const;

  std::FILE* file_ = nullptr;
  std::string path_;
  uint64_t record_count_ = 0;
  uint64_t file_size_ = 0;
  uint64_t offset_ = kRecordHeaderBytes;
  uint64_t record_index_ = 0;
};

}  // namespace towerps::data

#endif  // TOWERPS_DATA_RECORD_IO_H_
