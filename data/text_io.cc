#include "data/text_io.h"

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace towerps::data {
namespace {

constexpr size_t kBufferBytes = 1 << 20;

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

}  // namespace

absl::StatusOr<LineReader> LineReader::Open(const std::string& path, size_t max_line_bytes) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return ErrnoToStatus(errno, absl::StrCat("open ", path));
  return LineReader(file, path, max_line_bytes);
}

LineReader::LineReader(std::FILE* file, std::string path, size_t max_line_bytes)
    : file_(file), path_(std::move(path)), max_line_bytes_(max_line_bytes) {}

LineReader::LineReader(LineReader&& other) noexcept
    : file_(std::exchange(other.file_, nullptr)),
      path_(std::move(other.path_)),
      buffer_(std::move(other.buffer_)),
      begin_(other.begin_),
      eof_(other.eof_),
      max_line_bytes_(other.max_line_bytes_),
      skipping_(other.skipping_),
      last_cut_(other.last_cut_),
      last_complete_(other.last_complete_),
      line_number_(other.line_number_),
      bytes_read_(other.bytes_read_) {}

LineReader::~LineReader() {
  if (file_ != nullptr) std::fclose(file_);
}

absl::StatusOr<bool> LineReader::Next(absl::string_view* line) {
  while (true) {
    const char* start = buffer_.data() + begin_;
    size_t available = buffer_.size() - begin_;
    const void* newline = std::memchr(start, '\n', available);
    if (skipping_) {  // the rest of a cut line: drop it, newline included
      size_t length = newline != nullptr
                          ? static_cast<size_t>(static_cast<const char*>(newline) - start) + 1
                          : available;
      begin_ += length;
      bytes_read_ += length;
      if (newline != nullptr || eof_) skipping_ = false;
      if (newline != nullptr) continue;
      if (eof_) return false;
    } else if (max_line_bytes_ > 0 &&
               (newline != nullptr ? static_cast<const char*>(newline) - start
                                   : static_cast<std::ptrdiff_t>(available)) >
                   static_cast<std::ptrdiff_t>(max_line_bytes_)) {
      *line = absl::string_view(start, max_line_bytes_);  // too long: cut, skip the rest
      begin_ += max_line_bytes_;
      bytes_read_ += max_line_bytes_;
      skipping_ = true;
      last_cut_ = true;
      last_complete_ = false;
      ++line_number_;
      return true;
    } else if (newline != nullptr || (eof_ && available > 0)) {
      size_t length = newline != nullptr
                          ? static_cast<size_t>(static_cast<const char*>(newline) - start)
                          : available;
      begin_ += length + (newline != nullptr ? 1 : 0);
      bytes_read_ += length + (newline != nullptr ? 1 : 0);
      last_complete_ = newline != nullptr;
      last_cut_ = false;
      if (length > 0 && start[length - 1] == '\r') --length;
      *line = absl::string_view(start, length);
      ++line_number_;
      return true;
    }
    if (eof_) return false;
    // Keep the partial line, then refill behind it.
    buffer_.erase(0, begin_);
    begin_ = 0;
    size_t old_size = buffer_.size();
    size_t want = old_size < kBufferBytes ? kBufferBytes : old_size;  // long lines grow
    buffer_.resize(old_size + want);
    size_t got = std::fread(buffer_.data() + old_size, 1, want, file_);
    buffer_.resize(old_size + got);
    if (got < want) {
      if (std::ferror(file_)) return ErrnoToStatus(errno, absl::StrCat("read ", path_));
      eof_ = true;
    }
  }
}

void SplitFields(absl::string_view line, absl::string_view delimiter,
                 std::vector<absl::string_view>* fields) {
  fields->clear();
  if (delimiter.size() == 1) {
    const char d = delimiter[0];
    size_t start = 0;
    for (size_t i = 0; i < line.size(); ++i) {
      if (line[i] == d) {
        fields->push_back(line.substr(start, i - start));
        start = i + 1;
      }
    }
    fields->push_back(line.substr(start));
    return;
  }
  size_t start = 0;
  while (true) {
    size_t pos = line.find(delimiter, start);
    if (pos == absl::string_view::npos) break;
    fields->push_back(line.substr(start, pos - start));
    start = pos + delimiter.size();
  }
  fields->push_back(line.substr(start));
}

bool SplitCsv(absl::string_view line, char delimiter, std::vector<absl::string_view>* fields,
              std::vector<std::string>* scratch) {
  fields->clear();
  scratch->clear();
  // Quoted fields are unescaped into scratch; reserve so views stay valid.
  scratch->reserve(line.size() / 2 + 1);
  size_t i = 0;
  while (true) {
    if (i < line.size() && line[i] == '"') {
      std::string& out = scratch->emplace_back();
      ++i;
      bool closed = false;
      while (i < line.size()) {
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            out.push_back('"');
            i += 2;
            continue;
          }
          closed = true;
          ++i;
          break;
        }
        out.push_back(line[i++]);
      }
      if (!closed) return false;
      fields->push_back(out);
      if (i < line.size() && line[i] != delimiter) return false;  // junk after the quote
    } else {
      size_t end = line.find(delimiter, i);
      if (end == absl::string_view::npos) end = line.size();
      fields->push_back(line.substr(i, end - i));
      i = end;
    }
    if (i >= line.size()) return true;
    ++i;  // the delimiter
    if (i == line.size()) {
      fields->push_back(absl::string_view());
      return true;
    }
  }
}

bool IsValidUtf8(absl::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int extra;
    uint32_t code;
    if ((c & 0xE0) == 0xC0) {
      extra = 1;
      code = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      code = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      code = c & 0x07;
    } else {
      return false;
    }
    if (end - p <= extra) return false;
    for (int k = 1; k <= extra; ++k) {
      if ((p[k] & 0xC0) != 0x80) return false;
      code = (code << 6) | (p[k] & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (code < kMin[extra] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) {
      return false;
    }
    p += extra + 1;
  }
  return true;
}

std::string Latin1ToUtf8(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x80) {
      out.push_back(ch);
    } else {
      out.push_back(static_cast<char>(0xC0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
  }
  return out;
}

absl::string_view BaseName(absl::string_view path) {
  size_t slash = path.rfind('/');
  return slash == absl::string_view::npos ? path : path.substr(slash + 1);
}

absl::string_view Trim(absl::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace towerps::data
