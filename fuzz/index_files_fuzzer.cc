// The retrieval side's file readers: input byte 0 picks the index MANIFEST parser
// (index::IndexManifest::Parse, even) or the exported-embeddings reader
// (index::EmbeddingTable::Read, odd); the rest is the file.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/fuzz_util.h"
#include "index/embeddings.h"
#include "index/sharded_index.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  absl::string_view file = towerps::fuzz::AsView(data + 1, size - 1);
  if (data[0] % 2 == 0) {
    (void)towerps::index::IndexManifest::Parse(file);
    return 0;
  }
  const std::string path = towerps::fuzz::ScratchDir::Get().Write("embeddings.bin", file);
  (void)towerps::index::EmbeddingTable::Read(path);
  return 0;
}
