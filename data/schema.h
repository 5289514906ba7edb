// The dataset schema and the meta file of a prepared dataset.
//
// A prepared dataset describes each tower's input as sparse slots (single- or
// multi-valued uint64 keys) and dense features (floats). Fixed slots: user side
// slot 0 "user_id", slot 1 "history" (the last H positive item keys before the
// interaction); item side slot 0 "item_id". Slots marked item_id_space hold item
// keys, so the model can give history and item_id one shared table. The rest come
// from the source (genres, country, creator, content vectors, ...).
//
// DatasetMeta is what prepare writes to <dir>/meta.txt (format: docs/data.md):
// schema with vocabulary sizes and dense statistics, counts, shard files.
// All types are plain values; thread-compatible.
#ifndef TOWERPS_DATA_SCHEMA_H_
#define TOWERPS_DATA_SCHEMA_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace towerps::data {

enum class Side : uint8_t { kUser = 0, kItem = 1 };
enum class FeatureKind : uint8_t { kSingle = 0, kMulti = 1, kDense = 2 };

absl::string_view SideName(Side side);          // "user" / "item"
absl::string_view FeatureKindName(FeatureKind kind);  // "single" / "multi" / "dense"

inline constexpr int kUserIdSlot = 0;
inline constexpr int kHistorySlot = 1;
inline constexpr int kItemIdSlot = 0;
inline constexpr char kUserIdFeature[] = "user_id";
inline constexpr char kHistoryFeature[] = "history";
inline constexpr char kItemIdFeature[] = "item_id";
inline constexpr char kContentFeature[] = "content";

struct FeatureSpec {
  std::string name;
  FeatureKind kind = FeatureKind::kSingle;
  // Dense: floats per example (a content vector has dim > 1). Sparse: 1.
  int dim = 1;
  // Sparse: values are item keys (item_id, history).
  bool item_id_space = false;
  // Dense: log1p was applied at prepare time (values are log1p(max(x, 0))).
  bool log1p = false;
  // Sparse: distinct values over the kept entities (filled by prepare).
  uint64_t vocab_size = 0;
  // Dense: per-dimension mean and standard deviation over the training examples
  // (dim each; filled by prepare). Normalise as (x - mean) / max(stddev, 1e-6).
  std::vector<float> mean;
  std::vector<float> stddev;
};

struct SideSchema {
  std::vector<FeatureSpec> sparse;  // slot order
  std::vector<FeatureSpec> dense;   // concatenated in this order into the dense area

  int num_sparse() const { return static_cast<int>(sparse.size()); }
  // Sum of the dense features' dims: floats per entity.
  int dense_dim() const;
  // Slot of a sparse feature, or -1.
  int SparseSlot(absl::string_view name) const;
  // Offset of a dense feature in the dense area, or -1.
  int DenseOffset(absl::string_view name) const;
};

struct DatasetSchema {
  SideSchema user;
  SideSchema item;
  const SideSchema& side(Side s) const { return s == Side::kUser ? user : item; }
  SideSchema& side(Side s) { return s == Side::kUser ? user : item; }
};

struct ShardInfo {
  std::string file;  // relative to the dataset directory
  uint64_t records = 0;
};

inline constexpr char kMetaFile[] = "meta.txt";
inline constexpr char kUsersFile[] = "users.tpr";
inline constexpr char kItemsFile[] = "items.tpr";
inline constexpr char kItemFrequencyFile[] = "item_freq.tsv";
inline constexpr const char* kSplitNames[] = {"train", "valid", "test", "cold"};

struct DatasetMeta {
  DatasetSchema schema;
  std::string source_format;   // e.g. "movietweetings"
  std::string split;           // "leave_last_out" or "time"
  int history_length = 0;
  double min_rating = 0;
  int64_t valid_cutoff = 0;    // split "time": first timestamp of valid
  int64_t test_cutoff = 0;     // split "time": first timestamp of test
  uint64_t num_users = 0;      // records in users.tpr
  uint64_t num_items = 0;      // records in items.tpr
  uint64_t train_positives = 0;  // sum of item frequencies (for logQ)
  // Shards per split ("train", "valid", "test"), in order.
  std::map<std::string, std::vector<ShardInfo>> shards;

  uint64_t num_examples(absl::string_view split_name) const;
};

std::string SerializeDatasetMeta(const DatasetMeta& meta);
// Errors: InvalidArgument naming the line for a malformed meta file.
absl::StatusOr<DatasetMeta> ParseDatasetMeta(absl::string_view text);
// Reads <dir>/meta.txt. Errors: NotFound, InvalidArgument.
absl::StatusOr<DatasetMeta> LoadDatasetMeta(const std::string& dir);

}  // namespace towerps::data

#endif  // TOWERPS_DATA_SCHEMA_H_
