// The in-memory training example, its record encoding, and a columnar batch.
//
// An Example holds one positive interaction: ids, time, label, weight, and per
// tower a SideFeatures: the sparse slots of the side's schema as CSR (offsets +
// uint64 keys) and the dense area as floats. A reader reuses one Example, so
// steady-state decoding allocates nothing. ExampleBatch lays n examples out per
// slot (one CSR per slot, one n * dense_dim matrix per side), the shape the
// towers consume. Thread-compatible.
//
// Record encoding (little-endian; format: docs/data.md):
//   example: u64 user_id, u64 item_id, i64 timestamp, f32 label, f32 weight,
//            SideFeatures(user), SideFeatures(item)
//   entity:  u64 key, u64 train_count, u32 n + raw id, u32 n + title, SideFeatures
//   SideFeatures: u32 count[num_sparse], u64 values[sum count], f32 dense[dense_dim]
#ifndef TOWERPS_DATA_EXAMPLE_H_
#define TOWERPS_DATA_EXAMPLE_H_

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "data/schema.h"

namespace towerps::data {

struct SideFeatures {
  // offsets: num_sparse + 1; slot f's keys are values[offsets[f] .. offsets[f + 1]).
  std::vector<uint32_t> offsets;
  std::vector<uint64_t> values;
  // dense: the side's dense_dim floats.
  std::vector<float> dense;

  absl::Span<const uint64_t> slot(int f) const {
    return absl::MakeConstSpan(values.data() + offsets[f], offsets[f + 1] - offsets[f]);
  }
  int num_slots() const { return offsets.empty() ? 0 : static_cast<int>(offsets.size()) - 1; }
  // Empties the features, keeping the capacity; offsets becomes {0}.
  void Clear();
  // Appends one slot's keys; call once per slot in order after Clear().
  void AddSlot(absl::Span<const uint64_t> keys);
};

struct Example {
  uint64_t user_id = 0;
  uint64_t item_id = 0;
  int64_t timestamp = 0;  // seconds since the epoch (or line order when the log has none)
  float label = 0;        // the merged engagement label (rating, weighted signals)
  float weight = 1;       // sample weight
  SideFeatures user;
  SideFeatures item;
};

// One row of users.tpr / items.tpr: an entity's features for the export dataflows.
struct EntityRecord {
  uint64_t key = 0;          // == slot 0 of features
  uint64_t train_count = 0;  // positives in the training split
  std::string raw_id;        // the id as written in the source
  std::string title;         // display name (items with a title), else empty
  SideFeatures features;
};

// Appends the encoding to *out.
void EncodeExample(const Example& example, std::string* out);
void EncodeEntity(const EntityRecord& entity, std::string* out);

// Decodes into *out (reusing its storage). DataLoss if `bytes` does not match the
// schema (truncated, counts out of range, trailing bytes).
absl::Status DecodeExample(absl::string_view bytes, const DatasetSchema& schema, Example* out);
absl::Status DecodeEntity(absl::string_view bytes, const SideSchema& schema, EntityRecord* out);

// n examples laid out per slot. Thread-compatible.
class ExampleBatch {
 public:
  struct SparseColumn {
    std::vector<uint32_t> offsets;  // n + 1
    std::vector<uint64_t> values;
  };
  struct SideColumns {
    std::vector<SparseColumn> sparse;  // one per slot of the side's schema
    std::vector<float> dense;          // n * dense_dim, row-major
    int dense_dim = 0;

    // Shapes the columns for `schema` and empties them.
    void Init(const SideSchema& schema);
    // Empties the columns, keeping the capacity.
    void Clear();
    // Appends one entity's features as the next row. CHECK-fails if its slot count or
    // dense width differs from the schema (records are validated when decoded).
    void Append(const SideFeatures& features);
    // Rows held.
    size_t size() const { return sparse.empty() ? dense.size() / std::max(dense_dim, 1)
                                                : sparse[0].offsets.size() - 1; }
  };

  explicit ExampleBatch(const DatasetSchema& schema);

  // Empties the batch, keeping the capacity.
  void Clear();
  // Appends one example. CHECK-fails if its slot count differs from the schema.
  void Add(const Example& example);
  size_t size() const { return user_ids.size(); }

  std::vector<uint64_t> user_ids;   // n
  std::vector<uint64_t> item_ids;   // n
  std::vector<int64_t> timestamps;  // n
  std::vector<float> labels;        // n
  std::vector<float> weights;       // n
  SideColumns user;
  SideColumns item;
};

}  // namespace towerps::data

#endif  // TOWERPS_DATA_EXAMPLE_H_
