// Item deltas: the changes to a served index's items since its base version was
// built (new or changed item vectors, removed items), written by
// `towerps export --items_only` and applied by a live server (index/live_index.h)
// without a rebuild. docs/index.md, "Fresh items and new versions".
//
// One delta is one file <index_root>/deltas/delta-<seq, 8 digits>, written
// atomically (temporary name + rename). Format (little-endian):
//   magic "TPDELTA1" | u32 format (1) | u32 dim | u64 seq | i64 model_step |
//   i64 created_at_ms (wall clock, Unix epoch) | u32 n, n bytes base version name
//   | u64 upserts | u64 removals
//   upserts x (u64 key | u32 n, n bytes raw id | dim f32 vector)
//   removals x u64 key
//   u32 CRC-32C of every byte before it
// Every byte is hostile: ParseItemDelta checks the CRC, every size against the
// bytes left, the dim, finite values, key -1 (not an index id) and duplicate keys,
// and refuses the whole delta with DataLoss / InvalidArgument.
//
// Thread-safety: pure functions; an ItemDelta is a plain value.
#ifndef TOWERPS_INDEX_ITEM_DELTA_H_
#define TOWERPS_INDEX_ITEM_DELTA_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "index/embeddings.h"

namespace towerps::index {

inline constexpr char kItemDeltaMagic[8] = {'T', 'P', 'D', 'E', 'L', 'T', 'A', '1'};
inline constexpr uint32_t kItemDeltaFormat = 1;
// Limits a reader enforces (a larger delta means: build a new version).
inline constexpr int kMaxDeltaDim = 65536;
inline constexpr uint32_t kMaxDeltaRawIdBytes = 4096;

struct ItemDelta {
  int dim = 0;
  uint64_t seq = 0;                         // >= 1; applied in ascending order, once each
  int64_t model_step = 0;                   // the checkpoint step the vectors come from
  int64_t created_at_ms = 0;                // when export wrote it (wall clock, ms since epoch)
  std::string base_version;                 // the version dir it applies to ("v-3")
  std::vector<uint64_t> upsert_keys;        // u
  std::vector<std::string> upsert_raw_ids;  // u
  std::vector<float> upsert_vectors;        // u * dim
  std::vector<uint64_t> removed_keys;       // r

  int64_t upserts() const { return static_cast<int64_t>(upsert_keys.size()); }
};

// The file's bytes. InvalidArgument when the delta breaks a rule ParseItemDelta
// checks (shapes, dim, raw id length, key -1, duplicates, non-finite values).
absl::StatusOr<std::string> SerializeItemDelta(const ItemDelta& delta);

// Reads and verifies one delta. DataLoss: bad magic/format, truncation, trailing
// bytes, CRC; InvalidArgument: the rules above.
absl::StatusOr<ItemDelta> ParseItemDelta(absl::string_view bytes);

// "<root>/deltas/delta-<seq %08d>", and the seq of a file name ("delta-00000012"
// -> 12; -1 for any other name, temporary files included).
std::string ItemDeltaPath(const std::string& root, uint64_t seq);
int64_t ItemDeltaSeqOfName(absl::string_view name);

// The seqs of the deltas under <root>/deltas, ascending (none: empty; no deltas
// directory: empty). Errors: errno-mapped directory errors.
absl::StatusOr<std::vector<uint64_t>> ListItemDeltas(const std::string& root);

// Validates and writes `delta` as ItemDeltaPath(root, delta.seq) atomically
// (creating <root>/deltas). AlreadyExists when that seq is taken.
absl::Status WriteItemDelta(const std::string& root, const ItemDelta& delta);

// Publishes `delta` as the next delta of the index root: base version = what
// CURRENT names, seq = the largest seq under <root>/deltas + 1, created_at_ms = now
// (wall clock). Returns the seq. One writer at a time per root. Errors: NotFound /
// DataLoss (no or bad CURRENT), WriteItemDelta's.
absl::StatusOr<uint64_t> PublishItemDelta(const std::string& root, ItemDelta delta);

// The item dataflow's diff (`export --items_only --since=<previous embeddings>`):
// upserts = items of `now` whose key is not in `before` or whose vector differs in
// some component by more than `tolerance`; removals = keys of `before` not in
// `now`. Fills the delta's dim, model_step, upserts and removals (not seq, base
// version or time). InvalidArgument when the tables are not item tables of one dim.
absl::StatusOr<ItemDelta> DiffItemEmbeddings(const EmbeddingTable& before,
                                             const EmbeddingTable& now, float tolerance);

}  // namespace towerps::index

#endif  // TOWERPS_INDEX_ITEM_DELTA_H_
