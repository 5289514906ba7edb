// Streaming readers of a prepared dataset: examples for training, entities for export.
//
// ExampleReader reads one split's shards in order, or shuffled: the shard order is
// permuted per epoch and records are shuffled within blocks of `shuffle_buffer`
// consecutive records of a shard (prepare already shuffled each split globally).
// Several readers over disjoint partitions cover a split exactly once: by shards
// (reader p takes shards p, p + P, ...) or by records (record r of every shard goes
// to reader r % P). A reader is resumable: position() after any Next() names a
// point from which a new reader yields exactly the examples this one would still
// yield (the shuffle of a block is a function of seed, epoch, shard and block start,
// so it is replayed, not stored). Thread-compatible: one thread per reader.
#ifndef TOWERPS_DATA_EXAMPLE_READER_H_
#define TOWERPS_DATA_EXAMPLE_READER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "data/example.h"
#include "data/record_io.h"
#include "data/schema.h"

namespace towerps::data {

struct ExampleReaderOptions {
  // The dataset directory (holds meta.txt).
  std::string dataset_dir;
  // "train", "valid" or "test".
  std::string split = "train";
  // This reader's partition: partition_index in [0, num_partitions).
  int partition_index = 0;
  int num_partitions = 1;
  // kShards: whole shards per reader; kRecords: every num_partitions-th record.
  enum class PartitionBy { kShards, kRecords };
  PartitionBy partition_by = PartitionBy::kShards;
  // Shuffle shard order per epoch and records within blocks.
  bool shuffle = false;
  uint64_t seed = 1;
  // Records per block (the shuffle buffer); also the read-ahead unit.
  int shuffle_buffer = 4096;
  // Passes over the partition; 0 = forever.
  int epochs = 1;

  // InvalidArgument naming the bad field.
  absl::Status Validate() const;
};

// Where a reader is. Plain value; ToString()/Parse() for checkpoints and hand-over.
struct ReaderPosition {
  int64_t epoch = 0;
  int64_t shard_cursor = 0;         // index into this epoch's shard order
  uint64_t block_offset = 0;        // byte offset of the current block (0 = shard start)
  uint64_t block_record_index = 0;  // record index of the block's first record
  uint64_t emitted_in_block = 0;    // examples of the block already returned

  std::string ToString() const;  // "epoch:shard_cursor:block_offset:block_record:emitted"
  static absl::StatusOr<ReaderPosition> Parse(absl::string_view s);
  bool operator==(const ReaderPosition&) const = default;
};

class ExampleReader {
 public:
  // Opens the dataset's meta and positions the reader at `start`.
  // Errors: NotFound, InvalidArgument (options, unknown split, bad position), DataLoss.
  static absl::StatusOr<std::unique_ptr<ExampleReader>> Open(const ExampleReaderOptions& options,
                                                             const ReaderPosition& start = {});

  // Reads the next example into *out (reusing its storage); false at the end.
  // Errors: DataLoss naming file and offset (checksum, truncation, schema mismatch).
  absl::StatusOr<bool> Next(Example* out);

  // The position to resume from; see the file comment.
  const ReaderPosition& position() const { return position_; }
  const DatasetMeta& meta() const { return meta_; }
  // The shard files (relative to the dataset dir) this reader covers, in file order.
  const std::vector<std::string>& shard_files() const { return shard_files_; }

 private:
  ExampleReader(ExampleReaderOptions options, DatasetMeta meta, std::vector<std::string> shards);

  // Loads the block at position_ (skipping to the next shard / epoch as needed).
  // Returns false when the partition is exhausted.
  absl::StatusOr<bool> LoadBlock();
  std::vector<int> ShardOrder(int64_t epoch) const;

  // Constant after Open.
  const ExampleReaderOptions options_;
  const DatasetMeta meta_;
  const std::vector<std::string> shard_files_;

  ReaderPosition position_;
  std::vector<int> order_;                   // shard order of position_.epoch
  std::optional<RecordFileReader> file_;     // open shard of position_.shard_cursor
  std::vector<std::string> block_;           // payloads of the current block
  std::vector<uint32_t> permutation_;        // emission order within the block
  bool block_loaded_ = false;
  uint64_t next_block_offset_ = 0;
  uint64_t next_block_record_ = 0;
  int epochs_without_records_ = 0;
};

// Reads users.tpr or items.tpr of a dataset in order.
class EntityReader {
 public:
  // Errors: NotFound, DataLoss.
  static absl::StatusOr<std::unique_ptr<EntityReader>> Open(const std::string& dataset_dir,
                                                            Side side);
  // Reads the next entity into *out; false at the end. Errors: DataLoss.
  absl::StatusOr<bool> Next(EntityRecord* out);
  const DatasetMeta& meta() const { return meta_; }
  uint64_t size() const { return file_.record_count(); }

 private:
  EntityReader(DatasetMeta meta, Side side, RecordFileReader file)
      : meta_(std::move(meta)), side_(side), file_(std::move(file)) {}

  const DatasetMeta meta_;
  const Side side_;
  RecordFileReader file_;
  std::string payload_;
};

}  // namespace towerps::data

#endif  // TOWERPS_DATA_EXAMPLE_READER_H_
