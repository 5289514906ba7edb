#include "data/example_reader.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status.h"
#include "data/keys.h"

namespace towerps::data {

absl::Status ExampleReaderOptions::Validate() const {
  if (dataset_dir.empty()) return absl::InvalidArgumentError("dataset_dir is required");
  if (num_partitions < 1 || partition_index < 0 || partition_index >= num_partitions) {
    return absl::InvalidArgumentError(absl::StrCat("partition ", partition_index, " of ",
                                                   num_partitions, " is out of range"));
  }
  if (shuffle_buffer < 1) return absl::InvalidArgumentError("shuffle_buffer must be >= 1");
  if (epochs < 0) return absl::InvalidArgumentError("epochs must be >= 0");
  return absl::OkStatus();
}

std::string ReaderPosition::ToString() const {
  return absl::StrCat(epoch, ":", shard_cursor, ":", block_offset, ":", block_record_index, ":",
                      emitted_in_block);
}

absl::StatusOr<ReaderPosition> ReaderPosition::Parse(absl::string_view s) {
  std::vector<absl::string_view> parts = absl::StrSplit(s, ':');
  ReaderPosition p;
  if (parts.size() != 5 || !absl::SimpleAtoi(parts[0], &p.epoch) ||
      !absl::SimpleAtoi(parts[1], &p.shard_cursor) || !absl::SimpleAtoi(parts[2], &p.block_offset) ||
      !absl::SimpleAtoi(parts[3], &p.block_record_index) ||
      !absl::SimpleAtoi(parts[4], &p.emitted_in_block) || p.epoch < 0 || p.shard_cursor < 0) {
    return absl::InvalidArgumentError(absl::StrCat("bad reader position '", s, "'"));
  }
  return p;
}

absl::StatusOr<std::unique_ptr<ExampleReader>> ExampleReader::Open(
    const ExampleReaderOptions& options, const ReaderPosition& start) {
  TOWERPS_RETURN_IF_ERROR(options.Validate());
  TOWERPS_ASSIGN_OR_RETURN(DatasetMeta meta, LoadDatasetMeta(options.dataset_dir));
  auto it = meta.shards.find(options.split);
  if (it == meta.shards.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.dataset_dir, " has no split '", options.split, "'"));
  }
  std::vector<std::string> files;
  for (size_t j = 0; j < it->second.size(); ++j) {
    if (options.partition_by == ExampleReaderOptions::PartitionBy::kRecords ||
        static_cast<int>(j % options.num_partitions) == options.partition_index) {
      files.push_back(it->second[j].file);
    }
  }
  if (start.shard_cursor > static_cast<int64_t>(files.size())) {
    return absl::InvalidArgumentError(absl::StrCat("reader position ", start.ToString(),
                                                   " is past the partition's shards"));
  }
  std::unique_ptr<ExampleReader> reader(
      new ExampleReader(options, std::move(meta), std::move(files)));
  reader->position_ = start;
  reader->order_ = reader->ShardOrder(start.epoch);
  return reader;
}

ExampleReader::ExampleReader(ExampleReaderOptions options, DatasetMeta meta,
                             std::vector<std::string> shards)
    : options_(std::move(options)), meta_(std::move(meta)), shard_files_(std::move(shards)) {}

std::vector<int> ExampleReader::ShardOrder(int64_t epoch) const {
  std::vector<int> order(shard_files_.size());
  std::iota(order.begin(), order.end(), 0);
  if (options_.shuffle) {
    std::mt19937_64 rng(CombineSeeds(options_.seed, static_cast<uint64_t>(epoch)));
    std::shuffle(order.begin(), order.end(), rng);
  }
  return order;
}

absl::StatusOr<bool> ExampleReader::LoadBlock() {
  const bool by_records = options_.partition_by == ExampleReaderOptions::PartitionBy::kRecords;
  while (true) {
    if (options_.epochs != 0 && position_.epoch >= options_.epochs) return false;
    if (shard_files_.empty()) return false;
    if (position_.shard_cursor >= static_cast<int64_t>(order_.size())) {
      // A partition with no records at all would otherwise spin forever (epochs = 0).
      if (++epochs_without_records_ > 1) return false;
      ++position_.epoch;
      position_.shard_cursor = 0;
      position_.block_offset = 0;
      position_.block_record_index = 0;
      order_ = ShardOrder(position_.epoch);
      continue;
    }
    const int shard = order_[position_.shard_cursor];
    if (!file_.has_value()) {
      TOWERPS_ASSIGN_OR_RETURN(
          RecordFileReader f,
          RecordFileReader::Open(absl::StrCat(options_.dataset_dir, "/", shard_files_[shard]),
                                 RecordKind::kExamples));
      file_.emplace(std::move(f));
    }
    const uint64_t offset = position_.block_offset == 0 ? kRecordHeaderBytes : position_.block_offset;
    if (file_->offset() != offset || file_->record_index() != position_.block_record_index) {
      TOWERPS_RETURN_IF_ERROR(file_->Seek(offset, position_.block_record_index));
    }
    size_t kept = 0;
    uint64_t read = 0;
    for (; read < static_cast<uint64_t>(options_.shuffle_buffer); ++read) {
      if (block_.size() <= kept) block_.emplace_back();
      const uint64_t record = file_->record_index();
      TOWERPS_ASSIGN_OR_RETURN(bool more, file_->Next(&block_[kept]));
      if (!more) break;
      if (!by_records ||
          static_cast<int>(record % options_.num_partitions) == options_.partition_index) {
        ++kept;
      }
    }
    if (read == 0) {  // end of this shard
      file_.reset();
      ++position_.shard_cursor;
      position_.block_offset = 0;
      position_.block_record_index = 0;
      position_.emitted_in_block = 0;
      continue;
    }
    if (kept > 0) epochs_without_records_ = 0;
    next_block_offset_ = file_->offset();
    next_block_record_ = file_->record_index();
    permutation_.resize(kept);
    std::iota(permutation_.begin(), permutation_.end(), 0);
    if (options_.shuffle) {
      uint64_t seed = CombineSeeds(options_.seed, static_cast<uint64_t>(position_.epoch));
      seed = CombineSeeds(seed, static_cast<uint64_t>(shard));
      std::mt19937_64 rng(CombineSeeds(seed, position_.block_record_index));
      std::shuffle(permutation_.begin(), permutation_.end(), rng);
    }
    block_loaded_ = true;
    return true;
  }
}

absl::StatusOr<bool> ExampleReader::Next(Example* out) {
  while (true) {
    if (!block_loaded_) {
      TOWERPS_ASSIGN_OR_RETURN(bool more, LoadBlock());
      if (!more) return false;
    }
    if (position_.emitted_in_block < permutation_.size()) {
      const std::string& payload = block_[permutation_[position_.emitted_in_block]];
      absl::Status s = DecodeExample(payload, meta_.schema, out);
      if (!s.ok()) return Annotate(s, file_->path());
      ++position_.emitted_in_block;
      return true;
    }
    block_loaded_ = false;
    position_.block_offset = next_block_offset_;
    position_.block_record_index = next_block_record_;
    position_.emitted_in_block = 0;
  }
}

absl::StatusOr<std::unique_ptr<EntityReader>> EntityReader::Open(const std::string& dataset_dir,
                                                                 Side side) {
  TOWERPS_ASSIGN_OR_RETURN(DatasetMeta meta, LoadDatasetMeta(dataset_dir));
  const bool users = side == Side::kUser;
  TOWERPS_ASSIGN_OR_RETURN(
      RecordFileReader file,
      RecordFileReader::Open(absl::StrCat(dataset_dir, "/", users ? kUsersFile : kItemsFile),
                             users ? RecordKind::kUsers : RecordKind::kItems));
  return std::unique_ptr<EntityReader>(new EntityReader(std::move(meta), side, std::move(file)));
}

absl::StatusOr<bool> EntityReader::Next(EntityRecord* out) {
  TOWERPS_ASSIGN_OR_RETURN(bool more, file_.Next(&payload_));
  if (!more) return false;
  absl::Status s = DecodeEntity(payload_, meta_.schema.side(side_), out);
  if (!s.ok()) return Annotate(s, file_.path());
  return true;
}

}  // namespace towerps::data
