#include "worker/item_catalog.h"

#include <cmath>

#include "common/status.h"
#include "data/example_reader.h"

namespace towerps::worker {

absl::StatusOr<std::unique_ptr<ItemCatalog>> ItemCatalog::Load(const std::string& dataset_dir) {
  TOWERPS_ASSIGN_OR_RETURN(auto reader, data::EntityReader::Open(dataset_dir, data::Side::kItem));
  auto catalog = std::make_unique<ItemCatalog>();
  data::EntityRecord record;
  while (true) {
    TOWERPS_ASSIGN_OR_RETURN(bool more, reader->Next(&record));
    if (!more) break;
    catalog->rows_[record.key] = static_cast<int64_t>(catalog->keys_.size());
    catalog->keys_.push_back(record.key);
    catalog->counts_.push_back(static_cast<double>(record.train_count));
    catalog->features_.push_back(record.features);
    catalog->total_count_ += static_cast<double>(record.train_count);
  }
  return catalog;
}

int64_t ItemCatalog::RowOf(uint64_t key) const {
  auto it = rows_.find(key);
  return it == rows_.end() ? -1 : it->second;
}

float ItemCatalog::LogQ(uint64_t key) const {
  const int64_t row = RowOf(key);
  const double count = row < 0 ? 0.0 : counts_[row];
  return static_cast<float>(std::log((count + 0.5) / (total_count_ + 0.5 * size() + 1.0)));
}

float ItemCatalog::UniformLogQ() const {
  return static_cast<float>(-std::log(static_cast<double>(std::max<int64_t>(size(), 1))));
}

}  // namespace towerps::worker
