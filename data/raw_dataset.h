// What a log reader produces: the users and items seen (raw ids, keys, source
// attributes) and the interactions, before filtering and splitting.
//
// Memory: one Interaction is 24 bytes; entity attributes are kept once per entity.
// Thread-compatible.
#ifndef TOWERPS_DATA_RAW_DATASET_H_
#define TOWERPS_DATA_RAW_DATASET_H_

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "data/issue_log.h"
#include "data/schema.h"

namespace towerps::data {

// Source attributes of one entity, laid out like the side's attribute schema.
struct EntityAttrs {
  std::vector<uint64_t> values;  // keys of every attribute slot, concatenated
  std::vector<uint32_t> ends;    // per attribute slot: end of its keys; empty = none yet
  std::vector<float> dense;      // attribute dense area; empty = none yet (zeros)
  // Timestamp of the log row the attributes came from: the earliest row wins, so an
  // example never sees an attribute value from its future. Side files use INT64_MIN.
  int64_t time = std::numeric_limits<int64_t>::max();
};

// Builds one entity's attributes slot by slot, then stores them.
struct AttrBuilder {
  std::vector<uint64_t> values;
  std::vector<uint32_t> ends;
  std::vector<float> dense;

  void Clear() {
    values.clear();
    ends.clear();
    dense.clear();
  }
  void Add(uint64_t key) { values.push_back(key); }
  void EndSlot() { ends.push_back(static_cast<uint32_t>(values.size())); }
  void StoreTo(EntityAttrs* attrs, int64_t time) const {
    attrs->values = values;
    attrs->ends = ends;
    attrs->dense = dense;
    attrs->time = time;
  }
};

// Raw ids -> dense indices 0..n-1 and their 64-bit keys (data/keys.h).
class EntityTable {
 public:
  // The index of raw_id, added if new; -1 when a different raw id already has the
  // same 64-bit key (a hash collision; the caller reports the line).
  int64_t Intern(absl::string_view raw_id);
  // The index of raw_id, or -1.
  int64_t Find(absl::string_view raw_id) const;

  size_t size() const { return keys_.size(); }
  uint64_t key(size_t i) const { return keys_[i]; }
  const std::string& raw_id(size_t i) const { return raw_ids_[i]; }
  EntityAttrs& attrs(size_t i) { return attrs_[i]; }
  const EntityAttrs& attrs(size_t i) const { return attrs_[i]; }
  // Display titles (items of the MovieLens formats); empty when absent.
  void set_title(size_t i, std::string title);
  absl::string_view title(size_t i) const {
    return i < titles_.size() ? absl::string_view(titles_[i]) : absl::string_view();
  }

 private:
  absl::flat_hash_map<uint64_t, uint32_t> index_;
  std::vector<uint64_t> keys_;
  std::vector<std::string> raw_ids_;
  std::vector<EntityAttrs> attrs_;
  std::vector<std::string> titles_;
};

struct Interaction {
  uint32_t user = 0;  // index in RawDataset::users
  uint32_t item = 0;  // index in RawDataset::items
  int64_t timestamp = 0;
  float label = 0;
};

struct RawDataset {
  std::string format;
  // Source attribute features per side (no user_id / history / item_id).
  SideSchema user_attrs;
  SideSchema item_attrs;
  EntityTable users;
  EntityTable items;
  // When a side file defines the ids, interactions with unknown ids are malformed.
  bool users_closed = false;
  bool items_closed = false;
  std::vector<Interaction> interactions;
  int64_t interaction_lines = 0;  // data lines of the interaction log (no header)
  int64_t side_lines = 0;         // data lines of side files

  // Validates the ids and adds one interaction. The ids must be non-empty (and
  // digits only when numeric_ids); unknown ids of a closed side, hash collisions
  // and bad ids are reported to `issues`. Returns the index of the interaction's
  // user (for attributes) or -1 when the line was skipped; errors only in strict mode.
  absl::StatusOr<int64_t> AddInteraction(absl::string_view file, int64_t line,
                                         absl::string_view user, absl::string_view item,
                                         int64_t timestamp, float label, bool numeric_ids,
                                         IssueLog* issues);
};

// True when s is a non-empty string of ASCII digits.
bool IsDigits(absl::string_view s);

// The 4-digit year in the last "(YYYY)" of a title, or empty.
absl::string_view YearFromTitle(absl::string_view title);

}  // namespace towerps::data

#endif  // TOWERPS_DATA_RAW_DATASET_H_
