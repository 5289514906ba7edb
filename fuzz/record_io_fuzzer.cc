// The record file reader (data/record_io.h): the input is a record file, opened as the
// kind its header claims and read to the end; then read again from the first record's
// offset through Seek.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "data/record_io.h"
#include "fuzz/fuzz_util.h"

namespace {

void ReadAll(towerps::data::RecordFileReader& reader) {
  std::string payload;
  while (true) {
    auto more = reader.Next(&payload);
    if (!more.ok() || !*more) return;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  uint32_t kind = 1;
  if (size >= 16) std::memcpy(&kind, data + 12, sizeof(kind));
  const std::string path =
      towerps::fuzz::ScratchDir::Get().Write("records.tpr", towerps::fuzz::AsView(data, size));
  auto reader =
      towerps::data::RecordFileReader::Open(path, static_cast<towerps::data::RecordKind>(kind));
  if (!reader.ok()) return 0;
  ReadAll(*reader);
  if (reader->Seek(towerps::data::kRecordHeaderBytes, 0).ok()) ReadAll(*reader);
  return 0;
}
