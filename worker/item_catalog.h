// Every item of a prepared dataset in memory: keys, training frequencies (for the
// logQ correction), and features (for mixed negative sampling, export and
// evaluation). Immutable after Load; thread-safe.
#ifndef TOWERPS_WORKER_ITEM_CATALOG_H_
#define TOWERPS_WORKER_ITEM_CATALOG_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "data/example.h"
#include "data/schema.h"

namespace towerps::worker {

class ItemCatalog {
 public:
  // Reads <dataset_dir>/items.tpr. Errors: NotFound, DataLoss.
  static absl::StatusOr<std::unique_ptr<ItemCatalog>> Load(const std::string& dataset_dir);

  int64_t size() const { return static_cast<int64_t>(keys_.size()); }
  uint64_t key(int64_t row) const { return keys_[row]; }
  const data::SideFeatures& features(int64_t row) const { return features_[row]; }
  double train_count(int64_t row) const { return counts_[row]; }
  // Row of an item key, or -1.
  int64_t RowOf(uint64_t key) const;
  // log(q) of the item: its share of training positives (add-0.5 smoothed).
  float LogQ(uint64_t key) const;
  // log(1 / size()): the uniform sampler's q, for mixed negatives.
  float UniformLogQ() const;
  const std::vector<double>& train_counts() const { return counts_; }

 private:
  std::vector<uint64_t> keys_;
  std::vector<double> counts_;
  std::vector<data::SideFeatures> features_;  // TODO(perf): one CSR for 10M+ items
  absl::flat_hash_map<uint64_t, int64_t> rows_;
  double total_count_ = 0;
};

}  // namespace towerps::worker

#endif  // TOWERPS_WORKER_ITEM_CATALOG_H_
