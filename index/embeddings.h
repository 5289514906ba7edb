// Exported embeddings: one file per side ("users.emb", "items.emb") holding every
// entity's key, raw id and L2-normalised tower output, plus a .npy copy of the
// matrix (and one of the keys) for interop. Format (little-endian), documented in
// docs/index.md:
//
//   magic "TPEMB001" | u32 version (1) | u32 dim | u64 count | i64 model_step |
//   u32 side (0 user, 1 item) | u32 reserved (0)          -- 40-byte header
//   f32 values[count * dim]                               -- row-major, row i = entity i
//   u64 keys[count]
//   count x (u32 length, bytes) raw ids
//   u32 CRC-32C of every byte before it
//
// The matrix comes first so that a writer streams it chunk by chunk; the keys and
// raw ids (small next to it) are buffered and written at Finish().
// EmbeddingWriter is thread-compatible; an EmbeddingTable is immutable after Read
// (thread-safe).
#ifndef TOWERPS_INDEX_EMBEDDINGS_H_
#define TOWERPS_INDEX_EMBEDDINGS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/file_util.h"
#include "data/schema.h"

namespace towerps::index {

inline constexpr char kEmbeddingsMagic[8] = {'T', 'P', 'E', 'M', 'B', '0', '0', '1'};
inline constexpr uint32_t kEmbeddingsVersion = 1;

// Streams one side's embeddings to <path> and, when npy_prefix is not empty, to
// "<npy_prefix>.npy" (float32, shape (count, dim)) and "<npy_prefix>.keys.npy"
// (uint64, shape (count,)). Files appear atomically at Finish().
class EmbeddingWriter {
 public:
  // count: rows that will be appended (the header is written first). Errors: file
  // errors, InvalidArgument for dim < 1 or count < 0.
  static absl::StatusOr<std::unique_ptr<EmbeddingWriter>> Open(const std::string& path,
                                                               const std::string& npy_prefix,
                                                               data::Side side, int dim,
                                                               int64_t count, int64_t model_step);

  // Appends n rows: keys: n, raw_ids: n, values: n * dim. FailedPrecondition when
  // more than `count` rows would be written; file errors.
  absl::Status Append(absl::Span<const uint64_t> keys, absl::Span<const std::string> raw_ids,
                      absl::Span<const float> values);

  // Writes the keys, raw ids and checksum and commits every file.
  // FailedPrecondition unless exactly `count` rows were appended.
  absl::Status Finish();

  int64_t rows() const { return rows_; }

 private:
  EmbeddingWriter() = default;

  int dim_ = 0;
  int64_t count_ = 0;
  int64_t rows_ = 0;
  uint32_t crc_ = 0;
  std::optional<AtomicFileWriter> file_;
  std::optional<AtomicFileWriter> npy_;
  std::string npy_keys_path_;
  std::vector<uint64_t> keys_;
  std::vector<std::string> raw_ids_;
};

// One side's embeddings in memory.
struct EmbeddingTable {
  data::Side side = data::Side::kUser;
  int dim = 0;
  int64_t model_step = 0;
  std::vector<uint64_t> keys;         // count
  std::vector<std::string> raw_ids;   // count
  std::vector<float> values;          // count * dim

  int64_t size() const { return static_cast<int64_t>(keys.size()); }
  const float* row(int64_t i) const { return values.data() + i * dim; }

  // Reads and verifies a file written by EmbeddingWriter. Errors: NotFound,
  // DataLoss (bad magic or version, truncation, size mismatch, checksum).
  static absl::StatusOr<std::unique_ptr<EmbeddingTable>> Read(const std::string& path);
};

// Row lookup by key or raw id over a table (built once; thread-safe to read).
class EmbeddingLookup {
 public:
  explicit EmbeddingLookup(const EmbeddingTable* table);
  // Row of the key / raw id, or -1.
  int64_t RowOfKey(uint64_t key) const;
  int64_t RowOfRawId(absl::string_view raw_id) const;
  const EmbeddingTable& table() const { return *table_; }

 private:
  const EmbeddingTable* const table_;
  absl::flat_hash_map<uint64_t, int64_t> by_key_;
  absl::flat_hash_map<std::string, int64_t> by_raw_id_;
};

}  // namespace towerps::index

#endif  // TOWERPS_INDEX_EMBEDDINGS_H_
