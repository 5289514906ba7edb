#include "data/record_io.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/checksum.h"
#include "common/status.h"

namespace towerps::data {
namespace {

constexpr char kMagic[8] = {'T', 'P', 'S', 'R', 'E', 'C', 'R', 'D'};
constexpr uint32_t kVersion = 1;

template <typename T>
void PutAt(char* p, T v) {
  std::memcpy(p, &v, sizeof(T));
}
template <typename T>
T GetAt(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

uint32_t FrameCrc(uint32_t length, absl::string_view payload) {
  uint32_t crc = Crc32cExtend(0, &length, sizeof(length));
  return Crc32cExtend(crc, payload.data(), payload.size());
}

}  // namespace

absl::StatusOr<RecordFileWriter> RecordFileWriter::Open(const std::string& path, RecordKind kind,
                                                        uint64_t record_count) {
  TOWERPS_ASSIGN_OR_RETURN(AtomicFileWriter file, AtomicFileWriter::Open(path));
  char header[kRecordHeaderBytes] = {};
  std::memcpy(header, kMagic, sizeof(kMagic));
  PutAt<uint32_t>(header + 8, kVersion);
  PutAt<uint32_t>(header + 12, static_cast<uint32_t>(kind));
  PutAt<uint64_t>(header + 16, record_count);
  PutAt<uint32_t>(header + 24, 0);
  PutAt<uint32_t>(header + 28, Crc32c(absl::string_view(header, 28)));
  TOWERPS_RETURN_IF_ERROR(file.Append(absl::string_view(header, sizeof(header))));
  return RecordFileWriter(std::move(file), record_count);
}

RecordFileWriter::RecordFileWriter(AtomicFileWriter file, uint64_t record_count)
    : file_(std::move(file)), declared_(record_count) {}

absl::Status RecordFileWriter::Append(absl::string_view payload) {
  if (written_ >= declared_) {
    return absl::FailedPreconditionError(
        absl::StrCat("record file declared ", declared_, " records; one more appended"));
  }
  if (payload.size() > kMaxRecordBytes) {
    return absl::InvalidArgumentError(absl::StrCat("record of ", payload.size(), " bytes"));
  }
  const auto length = static_cast<uint32_t>(payload.size());
  char frame[8];
  PutAt<uint32_t>(frame, length);
  PutAt<uint32_t>(frame + 4, FrameCrc(length, payload));
  TOWERPS_RETURN_IF_ERROR(file_.Append(absl::string_view(frame, sizeof(frame))));
  TOWERPS_RETURN_IF_ERROR(file_.Append(payload));
  ++written_;
  return absl::OkStatus();
}

absl::Status RecordFileWriter::Finish() {
  if (written_ != declared_) {
    return absl::FailedPreconditionError(
        absl::StrCat("record file declared ", declared_, " records, got ", written_));
  }
  return file_.Commit();
}

absl::StatusOr<RecordFileReader> RecordFileReader::Open(const std::string& path,
                                                        RecordKind kind) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return ErrnoToStatus(errno, absl::StrCat("open ", path));
  struct stat st;
  uint64_t size = ::fstat(fileno(file), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  char header[kRecordHeaderBytes];
  if (std::fread(header, 1, sizeof(header), file) != sizeof(header) ||
      std::memcmp(header, kMagic, sizeof(kMagic)) != 0 ||
      GetAt<uint32_t>(header + 28) != Crc32c(absl::string_view(header, 28))) {
    std::fclose(file);
    return absl::DataLossError(absl::StrCat(path, ": not a towerps record file or bad header"));
  }
  if (GetAt<uint32_t>(header + 8) != kVersion) {
    std::fclose(file);
    return absl::DataLossError(
        absl::StrCat(path, ": unsupported record file version ", GetAt<uint32_t>(header + 8)));
  }
  if (GetAt<uint32_t>(header + 12) != static_cast<uint32_t>(kind)) {
    std::fclose(file);
    return absl::InvalidArgumentError(absl::StrCat(path, ": holds record kind ",
                                                   GetAt<uint32_t>(header + 12), ", expected ",
                                                   static_cast<uint32_t>(kind)));
  }
  // Large sequential reads: the example reader is bound by this buffer.
  std::setvbuf(file, nullptr, _IOFBF, 1 << 20);
  return RecordFileReader(file, path, GetAt<uint64_t>(header + 16), size);
}

RecordFileReader::RecordFileReader(std::FILE* file, std::string path, uint64_t record_count,
                                   uint64_t file_size)
    : file_(file), path_(std::move(path)), record_count_(record_count), file_size_(file_size) {}

RecordFileReader::RecordFileReader(RecordFileReader&& other) noexcept
    : file_(std::exchange(other.file_, nullptr)),
      path_(std::move(other.path_)),
      record_count_(other.record_count_),
      file_size_(other.file_size_),
      offset_(other.offset_),
      record_index_(other.record_index_) {}

RecordFileReader::~RecordFileReader() {
  if (file_ != nullptr) std::fclose(file_);
}

absl::Status RecordFileReader::Corrupt(absl::string_view what) const {
  return absl::DataLossError(
      absl::StrCat(path_, ": ", what, " at byte ", offset_, " (record ", record_index_, ")"));
}

absl::Status RecordFileReader::Seek(uint64_t offset, uint64_t record_index) {
  if (offset < kRecordHeaderBytes || offset > file_size_ || record_index > record_count_) {
    return absl::InvalidArgumentError(
        absl::StrCat(path_, ": cannot seek to byte ", offset, " record ", record_index));
  }
  if (::fseeko(file_, static_cast<off_t>(offset), SEEK_SET) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("seek ", path_));
  }
  offset_ = offset;
  record_index_ = record_index;
  return absl::OkStatus();
}

absl::StatusOr<bool> RecordFileReader::Next(std::string* payload) {
  char frame[8];
  size_t got = std::fread(frame, 1, sizeof(frame), file_);
  if (got == 0 && std::feof(file_)) {
    if (record_index_ != record_count_) {
      return Corrupt(absl::StrCat("file ends after ", record_index_, " of ", record_count_,
                                  " records"));
    }
    return false;
  }
  if (got != sizeof(frame)) return Corrupt("truncated record frame");
  if (record_index_ >= record_count_) return Corrupt("more records than the header declares");
  const uint32_t length = GetAt<uint32_t>(frame);
  if (length > kMaxRecordBytes || offset_ + 8 + length > file_size_) {
    return Corrupt("bad record length");
  }
  payload->resize(length);
  if (std::fread(payload->data(), 1, length, file_) != length) return Corrupt("truncated record");
  if (FrameCrc(length, *payload) != GetAt<uint32_t>(frame + 4)) {
    return Corrupt("record checksum mismatch");
  }
  offset_ += 8 + length;
  ++record_index_;
  return true;
}

}  // namespace towerps::data
