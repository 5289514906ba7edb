// Internal to prepare: the positives after filtering, sorted per user and split.
// Thread-compatible.
#ifndef TOWERPS_DATA_POSITIVE_LOG_H_
#define TOWERPS_DATA_POSITIVE_LOG_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "data/prepare.h"
#include "data/raw_dataset.h"

namespace towerps::data {

// Index into kSplitNames (schema.h).
enum SplitId : uint8_t { kTrain = 0, kValid = 1, kTest = 2, kCold = 3 };

struct PositiveLog {
  // Positives sorted by (user, timestamp, input order); user / item are dense
  // indices over the kept entities (not RawDataset indices).
  std::vector<Interaction> positives;
  // users + 1 entries: user u's positives are [user_begin[u], user_begin[u + 1]).
  std::vector<uint64_t> user_begin;
  // Kept index -> RawDataset index.
  std::vector<uint32_t> user_source;
  std::vector<uint32_t> item_source;
  // Per positive: its SplitId.
  std::vector<uint8_t> split;
  // Training positives per kept user / item.
  std::vector<uint64_t> user_train_count;
  std::vector<uint64_t> item_train_count;
  int64_t not_positive = 0;
  int64_t removed_by_kcore = 0;
  int64_t valid_cutoff = 0;  // split "time" only
  int64_t test_cutoff = 0;

  uint64_t num_users() const { return user_source.size(); }
  uint64_t num_items() const { return item_source.size(); }
};

// Filters, k-cores, sorts and splits raw->interactions (which it releases).
PositiveLog BuildPositiveLog(const PrepareOptions& options, RawDataset* raw);

}  // namespace towerps::data

#endif  // TOWERPS_DATA_POSITIVE_LOG_H_
