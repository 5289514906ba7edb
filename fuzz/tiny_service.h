// The retrieval service that the retrieval and http_topk fuzz targets drive: built
// once per process over a two-shard HNSW index of 64 items (dim 4, raw ids i0..i63)
// with 8 known users (u0..u7), keys HashKey(raw id) as `towerps export` writes them,
// and small request limits (k <= 32, efSearch <= 64, <= 64 exclusions) so that
// inputs reach every bound within -max_len. Immutable: one instance serves every input.
#ifndef TOWERPS_FUZZ_TINY_SERVICE_H_
#define TOWERPS_FUZZ_TINY_SERVICE_H_

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "data/keys.h"
#include "fuzz/fuzz_util.h"
#include "glog/logging.h"
#include "index/retrieval_service.h"
#include "index/sharded_index.h"

namespace towerps::fuzz {

inline constexpr int kTinyDim = 4;
inline constexpr int kTinyItems = 64;
inline constexpr int kTinyShards = 2;

inline std::unique_ptr<index::EmbeddingTable> TinyTable(data::Side side, int n) {
  auto table = std::make_unique<index::EmbeddingTable>();
  table->side = side;
  table->dim = kTinyDim;
  for (int i = 0; i < n; ++i) {
    table->raw_ids.push_back(absl::StrCat(side == data::Side::kUser ? "u" : "i", i));
    table->keys.push_back(data::HashKey(table->raw_ids.back()));
    for (int d = 0; d < kTinyDim; ++d) {
      table->values.push_back(static_cast<float>((i * 7 + d * 3) % 11) - 5.0f);
    }
  }
  return table;
}

// Aborts when the harness cannot build it (not an input's fault). Never freed.
inline index::RetrievalService* MakeTinyRetrievalService() {
  auto items = TinyTable(data::Side::kItem, kTinyItems);
  index::IndexBuildOptions build;
  build.shards = kTinyShards;
  build.ann.hnsw_m = 8;
  build.ann.ef_construction = 16;
  const std::string dir = ScratchDir::Get().File("index");
  auto manifest = index::BuildShardedIndex(build, items->keys, items->values.data(), kTinyDim,
                                           1, dir);
  CHECK(manifest.ok()) << manifest.status();
  auto local = index::ShardedIndex::Load(dir);
  CHECK(local.ok()) << local.status();
  index::RetrievalServiceOptions options;
  options.max_k = 32;
  options.default_ef_search = 16;
  options.max_ef_search = 64;
  options.max_exclude = 64;
  auto service = index::RetrievalService::Create(nullptr, options, std::move(local).value(),
                                                 TinyTable(data::Side::kUser, 8), std::move(items));
  CHECK(service.ok()) << service.status();
  return service->release();
}

}  // namespace towerps::fuzz

#endif  // TOWERPS_FUZZ_TINY_SERVICE_H_
