#include "common/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace towerps {
namespace {

constexpr size_t kWriteBufferBytes = 1 << 20;

std::string ParentDirectory(const std::string& path) {
  std::filesystem::path p(path);
  std::string parent = p.parent_path().string();
  return parent.empty() ? "." : parent;
}

absl::Status WriteAll(int fd, const char* data, size_t n, const std::string& path) {
  while (n > 0) {
    ssize_t written = ::write(fd, data, n);
    if (written < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, absl::StrCat("write ", path));
    }
    data += written;
    n -= static_cast<size_t>(written);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> ReadFileToString(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open ", path));
  std::string out;
  struct stat st;
  if (::fstat(fd, &st) == 0 && st.st_size > 0) out.reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  while (true) {
    ssize_t got = ::read(fd, buf, sizeof(buf));
    if (got < 0) {
      if (errno == EINTR) continue;
      int saved = errno;
      ::close(fd);
      return ErrnoToStatus(saved, absl::StrCat("read ", path));
    }
    if (got == 0) break;
    out.append(buf, static_cast<size_t>(got));
  }
  ::close(fd);
  return out;
}

absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents,
                                 unsigned mode) {
  TOWERPS_ASSIGN_OR_RETURN(AtomicFileWriter writer, AtomicFileWriter::Open(path, mode));
  TOWERPS_RETURN_IF_ERROR(writer.Append(contents));
  return writer.Commit();
}

absl::Status CreateDirectories(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return ErrnoToStatus(ec.value(), absl::StrCat("mkdir ", path));
  if (!std::filesystem::is_directory(path, ec)) {
    return absl::FailedPreconditionError(absl::StrCat(path, " exists and is not a directory"));
  }
  return absl::OkStatus();
}

absl::Status RemoveAll(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) return ErrnoToStatus(ec.value(), absl::StrCat("remove ", path));
  return absl::OkStatus();
}

absl::Status SyncDirectory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open directory ", dir));
  int rc = ::fsync(fd);
  int saved = errno;
  ::close(fd);
  if (rc != 0) return ErrnoToStatus(saved, absl::StrCat("fsync directory ", dir));
  return absl::OkStatus();
}

absl::Status RenameDirectory(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("rename ", from, " -> ", to));
  }
  return SyncDirectory(ParentDirectory(to));
}

absl::Status AppendOnce(int fd, absl::string_view bytes, absl::string_view path) {
  ssize_t written;
  do {
    written = ::write(fd, bytes.data(), bytes.size());
  } while (written < 0 && errno == EINTR);
  if (written == static_cast<ssize_t>(bytes.size())) return absl::OkStatus();
  if (written < 0) return ErrnoToStatus(errno, absl::StrCat("append to ", path));
  return absl::ResourceExhaustedError(
      absl::StrCat("append to ", path, ": ", written, " of ", bytes.size(), " bytes written"));
}

absl::Status AppendToFile(const std::string& path, absl::string_view bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open ", path));
  absl::Status status = AppendOnce(fd, bytes, path);
  ::close(fd);
  return status;
}

bool PathExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

absl::StatusOr<AtomicFileWriter> AtomicFileWriter::Open(const std::string& path, unsigned mode) {
  std::string tmp = absl::StrCat(path, ".tmp.", ::getpid());
  // A leftover temporary file would keep its old permission bits through O_CREAT.
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("create ", tmp));
  return AtomicFileWriter(fd, path, std::move(tmp));
}

AtomicFileWriter::AtomicFileWriter(int fd, std::string path, std::string tmp_path)
    : fd_(fd), path_(std::move(path)), tmp_path_(std::move(tmp_path)) {
  buffer_.reserve(kWriteBufferBytes);
}

AtomicFileWriter::AtomicFileWriter(AtomicFileWriter&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      path_(std::move(other.path_)),
      tmp_path_(std::move(other.tmp_path_)),
      buffer_(std::move(other.buffer_)),
      size_(other.size_) {}

AtomicFileWriter& AtomicFileWriter::operator=(AtomicFileWriter&& other) noexcept {
  if (this != &other) {
    this->~AtomicFileWriter();
    new (this) AtomicFileWriter(std::move(other));
  }
  return *this;
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_path_.c_str());
  }
}

absl::Status AtomicFileWriter::Append(absl::string_view bytes) {
  if (fd_ < 0) return absl::FailedPreconditionError("AtomicFileWriter already committed");
  size_ += bytes.size();
  if (buffer_.size() + bytes.size() > kWriteBufferBytes) {
    TOWERPS_RETURN_IF_ERROR(FlushBuffer());
    if (bytes.size() >= kWriteBufferBytes) return WriteAll(fd_, bytes.data(), bytes.size(), tmp_path_);
  }
  buffer_.append(bytes.data(), bytes.size());
  return absl::OkStatus();
}

absl::Status AtomicFileWriter::FlushBuffer() {
  absl::Status status = WriteAll(fd_, buffer_.data(), buffer_.size(), tmp_path_);
  buffer_.clear();
  return status;
}

absl::Status AtomicFileWriter::Commit() {
  if (fd_ < 0) return absl::FailedPreconditionError("AtomicFileWriter already committed");
  TOWERPS_RETURN_IF_ERROR(FlushBuffer());
  if (::fsync(fd_) != 0) return ErrnoToStatus(errno, absl::StrCat("fsync ", tmp_path_));
  if (::close(fd_) != 0) {
    fd_ = -1;
    return ErrnoToStatus(errno, absl::StrCat("close ", tmp_path_));
  }
  fd_ = -1;
  if (::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    int saved = errno;
    ::unlink(tmp_path_.c_str());
    return ErrnoToStatus(saved, absl::StrCat("rename ", tmp_path_, " -> ", path_));
  }
  return SyncDirectory(ParentDirectory(path_));
}

}  // namespace towerps
