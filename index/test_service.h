// For tests and fuzz targets only: a small RetrievalService over a two-shard index of
// generated embeddings - items "i<N>" and users "u<N>" with keys HashKey(raw id), as
// `towerps export` writes them, and value (i * 7 + d * 3) % 11 - 5 + jitter * i in
// component d of row i. Used by http/ tests (exact "Flat" shards) and the retrieval and
// http_topk fuzz targets (HNSW shards, small limits).
#ifndef TOWERPS_INDEX_TEST_SERVICE_H_
#define TOWERPS_INDEX_TEST_SERVICE_H_

#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "data/keys.h"
#include "index/retrieval_service.h"
#include "index/sharded_index.h"

namespace towerps::index {

struct TestServiceSpec {
  int dim = 4;
  int items = 64;
  int users = 8;
  int shards = 2;
  float jitter = 0;      // added per row index: 0 repeats rows every 11
  std::string factory;   // a Faiss factory string; empty: Faiss HNSW M 8, efC 16
  RetrievalServiceOptions options;  // limits (max_k, max_ef_search, max_exclude, ...)
};

inline std::unique_ptr<EmbeddingTable> TestTable(const TestServiceSpec& spec, data::Side side) {
  auto table = std::make_unique<EmbeddingTable>();
  table->side = side;
  table->dim = spec.dim;
  const int n = side == data::Side::kUser ? spec.users : spec.items;
  for (int i = 0; i < n; ++i) {
    table->raw_ids.push_back(absl::StrCat(side == data::Side::kUser ? "u" : "i", i));
    table->keys.push_back(data::HashKey(table->raw_ids.back()));
    for (int d = 0; d < spec.dim; ++d) {
      table->values.push_back(static_cast<float>((i * 7 + d * 3) % 11) - 5.0f +
                              spec.jitter * static_cast<float>(i));
    }
  }
  return table;
}

// Builds the index in `dir` (created) and the service over it.
inline absl::StatusOr<std::unique_ptr<RetrievalService>> MakeTestService(
    const TestServiceSpec& spec, const std::string& dir) {
  auto items = TestTable(spec, data::Side::kItem);
  IndexBuildOptions build;
  build.shards = spec.shards;
  if (spec.factory.empty()) {
    build.ann.hnsw_m = 8;
    build.ann.ef_construction = 16;
  } else {
    build.ann.factory = spec.factory;
  }
  TOWERPS_RETURN_IF_ERROR(
      BuildShardedIndex(build, items->keys, items->values.data(), spec.dim, 1, dir).status());
  TOWERPS_ASSIGN_OR_RETURN(std::unique_ptr<ShardedIndex> local, ShardedIndex::Load(dir));
  return RetrievalService::Create(nullptr, spec.options, std::move(local),
                                  TestTable(spec, data::Side::kUser), std::move(items));
}

}  // namespace towerps::index

#endif  // TOWERPS_INDEX_TEST_SERVICE_H_
