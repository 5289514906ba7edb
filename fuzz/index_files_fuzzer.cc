// The retrieval side's file readers: input byte 0 % 4 picks the index MANIFEST
// parser (index::IndexManifest::Parse, 0), the exported-embeddings reader
// (index::EmbeddingTable::Read, 1), or an index shard's reader: hnswlib (2) or
// exact (3) through index::AnnIndex::Deserialize, searched once when it loads
// (a graph that reads but links badly would fail there). The rest is the file.
// (Faiss's own reader is not fuzzed: its shards are trusted behind their CRC-32C.)
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz/fuzz_util.h"
#include "index/ann_index.h"
#include "index/embeddings.h"
#include "index/sharded_index.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  absl::string_view file = towerps::fuzz::AsView(data + 1, size - 1);
  switch (data[0] % 4) {
    case 0:
      (void)towerps::index::IndexManifest::Parse(file);
      return 0;
    case 1: {
      const std::string path = towerps::fuzz::ScratchDir::Get().Write("embeddings.bin", file);
      (void)towerps::index::EmbeddingTable::Read(path);
      return 0;
    }
    default: {
      using towerps::index::AnnEngine;
      auto index = towerps::index::AnnIndex::Deserialize(
          file, data[0] % 4 == 2 ? AnnEngine::kHnswlib : AnnEngine::kExact);
      if (!index.ok() || (*index)->dim() > 4096) return 0;
      const std::vector<float> query((*index)->dim(), 0.5f);
      std::vector<int64_t> ids(3);
      std::vector<float> scores(3);
      const int64_t exclude[] = {11, 12};
      (void)(*index)->Search(query.data(), 3, 8, exclude, ids.data(), scores.data());
      return 0;
    }
  }
}
