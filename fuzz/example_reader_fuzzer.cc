// The dataset readers (data/example_reader.h): the input is a dataset directory in up
// to 5 parts, written to fixed names: meta.txt, train-00000-of-00001.tpr, users.tpr,
// items.tpr, and a reader position. Every example of the train split is read (in
// order from the position, then shuffled by records over 2 partitions) and every entity.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "data/example_reader.h"
#include "fuzz/fuzz_util.h"

namespace {

using towerps::data::ExampleReader;
using towerps::data::ExampleReaderOptions;

void ReadExamples(const ExampleReaderOptions& options,
                  const towerps::data::ReaderPosition& start) {
  auto reader = ExampleReader::Open(options, start);
  if (!reader.ok()) return;
  towerps::data::Example example;
  // Bounded: a small input cannot name more examples than this honestly.
  for (int i = 0; i < 100000; ++i) {
    auto more = (*reader)->Next(&example);
    if (!more.ok() || !*more) return;
  }
}

void ReadEntities(const std::string& dir, towerps::data::Side side) {
  auto reader = towerps::data::EntityReader::Open(dir, side);
  if (!reader.ok()) return;
  towerps::data::EntityRecord entity;
  while (true) {
    auto more = (*reader)->Next(&entity);
    if (!more.ok() || !*more) return;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const towerps::fuzz::ScratchDir& dir = towerps::fuzz::ScratchDir::Get();
  std::vector<absl::string_view> parts =
      towerps::fuzz::SplitParts(towerps::fuzz::AsView(data, size), 5);
  parts.resize(5);
  dir.Clear();
  dir.Write("meta.txt", parts[0]);
  dir.Write("train-00000-of-00001.tpr", parts[1]);
  dir.Write("users.tpr", parts[2]);
  dir.Write("items.tpr", parts[3]);
  ExampleReaderOptions options;
  options.dataset_dir = dir.path();
  options.shuffle_buffer = 16;
  towerps::data::ReaderPosition start;
  auto position = towerps::data::ReaderPosition::Parse(parts[4]);
  if (position.ok()) start = *position;
  ReadExamples(options, start);
  options.shuffle = true;
  options.num_partitions = 2;
  options.partition_index = 1;
  options.partition_by = ExampleReaderOptions::PartitionBy::kRecords;
  options.epochs = 2;
  ReadExamples(options, {});
  ReadEntities(dir.path(), towerps::data::Side::kUser);
  ReadEntities(dir.path(), towerps::data::Side::kItem);
  return 0;
}
