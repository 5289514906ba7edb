#include "index/embeddings.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/checksum.h"
#include "common/status.h"

namespace towerps::index {
namespace {

constexpr size_t kHeaderBytes = 40;

template <typename T>
void PutPod(std::string* out, T value) {
  out->append(reinterpret_cast<const char*>(&value), sizeof(T));
}

// The .npy v1.0 header for a C-order array of `descr` with `shape`.
std::string NpyHeader(absl::string_view descr, absl::string_view shape) {
  std::string dict = absl::StrCat("{'descr': '", descr, "', 'fortran_order': False, 'shape': ",
                                  shape, ", }");
  // magic(6) + version(2) + len(2) + dict + padding + '\n' is a multiple of 64.
  size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict.push_back('\n');
  std::string header("\x93NUMPY\x01\x00", 8);
  PutPod<uint16_t>(&header, static_cast<uint16_t>(dict.size()));
  return header + dict;
}

// Reads a T at *pos of `bytes`, advancing; false when past the end.
template <typename T>
bool GetPod(absl::string_view bytes, size_t* pos, T* out) {
  if (*pos > bytes.size() || bytes.size() - *pos < sizeof(T)) return false;
  std::memcpy(out, bytes.data() + *pos, sizeof(T));
  *pos += sizeof(T);
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<EmbeddingWriter>> EmbeddingWriter::Open(
    const std::string& path, const std::string& npy_prefix, data::Side side, int dim,
    int64_t count, int64_t model_step) {
  if (dim < 1 || count < 0) {
    return absl::InvalidArgumentError(absl::StrCat("embeddings: bad dim ", dim, " or count ",
                                                   count));
  }
  std::unique_ptr<EmbeddingWriter> writer(new EmbeddingWriter());
  writer->dim_ = dim;
  writer->count_ = count;
  TOWERPS_ASSIGN_OR_RETURN(AtomicFileWriter file, AtomicFileWriter::Open(path));
  writer->file_.emplace(std::move(file));
  std::string header(kEmbeddingsMagic, sizeof(kEmbeddingsMagic));
  PutPod<uint32_t>(&header, kEmbeddingsVersion);
  PutPod<uint32_t>(&header, static_cast<uint32_t>(dim));
  PutPod<uint64_t>(&header, static_cast<uint64_t>(count));
  PutPod<int64_t>(&header, model_step);
  PutPod<uint32_t>(&header, static_cast<uint32_t>(side));
  PutPod<uint32_t>(&header, 0);
  writer->crc_ = Crc32c(header);
  TOWERPS_RETURN_IF_ERROR(writer->file_->Append(header));
  if (!npy_prefix.empty()) {
    TOWERPS_ASSIGN_OR_RETURN(AtomicFileWriter npy,
                             AtomicFileWriter::Open(absl::StrCat(npy_prefix, ".npy")));
    writer->npy_.emplace(std::move(npy));
    TOWERPS_RETURN_IF_ERROR(
        writer->npy_->Append(NpyHeader("<f4", absl::StrFormat("(%d, %d)", count, dim))));
    writer->npy_keys_path_ = absl::StrCat(npy_prefix, ".keys.npy");
  }
  writer->keys_.reserve(count);
  writer->raw_ids_.reserve(count);
  return writer;
}

absl::Status EmbeddingWriter::Append(absl::Span<const uint64_t> keys,
                                     absl::Span<const std::string> raw_ids,
                                     absl::Span<const float> values) {
  const int64_t n = static_cast<int64_t>(keys.size());
  if (raw_ids.size() != keys.size() || values.size() != keys.size() * dim_) {
    return absl::InvalidArgumentError("embeddings: keys, raw ids and values disagree in size");
  }
  if (rows_ + n > count_) {
    return absl::FailedPreconditionError(
        absl::StrCat("embeddings: more than the announced ", count_, " rows"));
  }
  absl::string_view bytes(reinterpret_cast<const char*>(values.data()),
                          values.size() * sizeof(float));
  crc_ = Crc32cExtend(crc_, bytes.data(), bytes.size());
  TOWERPS_RETURN_IF_ERROR(file_->Append(bytes));
  if (npy_) TOWERPS_RETURN_IF_ERROR(npy_->Append(bytes));
  keys_.insert(keys_.end(), keys.begin(), keys.end());
  raw_ids_.insert(raw_ids_.end(), raw_ids.begin(), raw_ids.end());
  rows_ += n;
  return absl::OkStatus();
}

absl::Status EmbeddingWriter::Finish() {
  if (rows_ != count_) {
    return absl::FailedPreconditionError(
        absl::StrCat("embeddings: ", rows_, " rows written, ", count_, " announced"));
  }
  std::string tail(reinterpret_cast<const char*>(keys_.data()), keys_.size() * sizeof(uint64_t));
  for (const std::string& id : raw_ids_) {
    PutPod<uint32_t>(&tail, static_cast<uint32_t>(id.size()));
    tail.append(id);
  }
  crc_ = Crc32cExtend(crc_, tail.data(), tail.size());
  PutPod<uint32_t>(&tail, crc_);
  TOWERPS_RETURN_IF_ERROR(file_->Append(tail));
  TOWERPS_RETURN_IF_ERROR(file_->Commit());
  if (npy_) {
    TOWERPS_RETURN_IF_ERROR(npy_->Commit());
    std::string keys = NpyHeader("<u8", absl::StrFormat("(%d,)", count_));
    keys.append(reinterpret_cast<const char*>(keys_.data()), keys_.size() * sizeof(uint64_t));
    TOWERPS_RETURN_IF_ERROR(WriteFileAtomically(npy_keys_path_, keys));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<EmbeddingTable>> EmbeddingTable::Read(const std::string& path) {
  TOWERPS_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(path));
  auto corrupt = [&](absl::string_view what) {
    return absl::DataLossError(absl::StrCat("embeddings ", path, ": ", what));
  };
  if (bytes.size() < kHeaderBytes + sizeof(uint32_t) ||
      std::memcmp(bytes.data(), kEmbeddingsMagic, sizeof(kEmbeddingsMagic)) != 0) {
    return corrupt("not an embeddings file (bad magic or too short)");
  }
  uint32_t stored_crc;
  std::memcpy(&stored_crc, bytes.data() + bytes.size() - 4, 4);
  if (Crc32c(absl::string_view(bytes.data(), bytes.size() - 4)) != stored_crc) {
    return corrupt("checksum mismatch (file changed or truncated)");
  }
  absl::string_view body(bytes.data(), bytes.size() - 4);
  size_t pos = sizeof(kEmbeddingsMagic);
  uint32_t version = 0, dim = 0, side = 0, reserved = 0;
  uint64_t count = 0;
  auto table = std::make_unique<EmbeddingTable>();
  GetPod(body, &pos, &version);
  GetPod(body, &pos, &dim);
  GetPod(body, &pos, &count);
  GetPod(body, &pos, &table->model_step);
  GetPod(body, &pos, &side);
  GetPod(body, &pos, &reserved);
  if (version != kEmbeddingsVersion) return corrupt(absl::StrCat("unknown version ", version));
  if (dim < 1 || side > 1) return corrupt("bad dim or side");
  const uint64_t matrix_bytes = count * dim * sizeof(float);
  if (count > body.size() || matrix_bytes + count * sizeof(uint64_t) > body.size() - pos) {
    return corrupt("shorter than its header says");
  }
  table->dim = static_cast<int>(dim);
  table->side = static_cast<data::Side>(side);
  table->values.resize(count * dim);
  if (matrix_bytes > 0) std::memcpy(table->values.data(), body.data() + pos, matrix_bytes);
  pos += matrix_bytes;
  table->keys.resize(count);
  if (count > 0) std::memcpy(table->keys.data(), body.data() + pos, count * sizeof(uint64_t));
  pos += count * sizeof(uint64_t);
  table->raw_ids.resize(count);
  for (uint64_t i = 0; i < count; ++i) {
    uint32_t length;
    if (!GetPod(body, &pos, &length) || body.size() - pos < length) {
      return corrupt("truncated raw ids");
    }
    table->raw_ids[i].assign(body.data() + pos, length);
    pos += length;
  }
  if (pos != body.size()) return corrupt("trailing bytes");
  return table;
}

EmbeddingLookup::EmbeddingLookup(const EmbeddingTable* table) : table_(table) {
  by_key_.reserve(table->size());
  by_raw_id_.reserve(table->size());
  for (int64_t i = 0; i < table->size(); ++i) {
    by_key_.emplace(table->keys[i], i);
    by_raw_id_.emplace(table->raw_ids[i], i);
  }
}

int64_t EmbeddingLookup::RowOfKey(uint64_t key) const {
  auto it = by_key_.find(key);
  return it == by_key_.end() ? -1 : it->second;
}

int64_t EmbeddingLookup::RowOfRawId(absl::string_view raw_id) const {
  auto it = by_raw_id_.find(std::string(raw_id));
  return it == by_raw_id_.end() ? -1 : it->second;
}

}  // namespace towerps::index
