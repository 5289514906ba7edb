// Internal to prepare: turns a PositiveLog into examples, entity records, stats and
// the files of a dataset directory. Single-threaded; thread-compatible.
#ifndef TOWERPS_DATA_DATASET_WRITER_H_
#define TOWERPS_DATA_DATASET_WRITER_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "data/example.h"
#include "data/positive_log.h"
#include "data/prepare.h"
#include "data/raw_dataset.h"
#include "data/schema.h"

namespace towerps::data {

// The schema of the dataset: fixed slots, then the source's attributes, with
// vocabulary sizes over the kept entities and dense statistics over the training
// examples.
DatasetSchema BuildSchema(const RawDataset& raw, const PositiveLog& log);

// Assembles examples and entity records. Borrows raw, log and schema.
class FeatureAssembler {
 public:
  FeatureAssembler(const RawDataset& raw, const PositiveLog& log, const DatasetSchema& schema,
                   int history_length);

  // The example of positive number p (index into log.positives). Its history holds
  // the last H positive items of the user with a timestamp strictly before the
  // example's, excluding the example's own item, oldest first.
  void BuildExample(uint64_t p, Example* out) const;
  // Kept user u; history = the last H training positives.
  void BuildUser(uint32_t u, EntityRecord* out) const;
  // Kept item i.
  void BuildItem(uint32_t i, EntityRecord* out) const;

 private:
  // One side's features: the id slot (*key), for users history_, then attributes.
  void UserSide(uint32_t raw_user, const uint64_t* key, SideFeatures* out) const;
  void ItemSide(uint32_t raw_item, const uint64_t* key, SideFeatures* out) const;
  void AddAttrs(const EntityAttrs& attrs, const SideSchema& schema, int first_slot,
                SideFeatures* out) const;

  const RawDataset& raw_;
  const PositiveLog& log_;
  const DatasetSchema& schema_;
  const int history_length_;
  mutable std::vector<uint64_t> history_;
};

// Writes shards, entity files, item_freq.tsv and meta.txt into `dir` (which exists).
absl::Status WriteDatasetFiles(const RawDataset& raw, const PositiveLog& log,
                               const PrepareOptions& options, const std::string& dir,
                               const PrepareHook& hook, const std::atomic<bool>* cancel,
                               DatasetMeta* meta);

}  // namespace towerps::data

#endif  // TOWERPS_DATA_DATASET_WRITER_H_
